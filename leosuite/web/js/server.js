// #/servers/<name>: one server: live state, power buttons, status details, and its tabs:
// each a module whose mount function takes (panel, app, name, status) and returns a
// cleanup function (or nothing); Settings (forms.js) also holds Destroy.

import { STATUS } from "./api.js";
import { forget, formatCpu, watch } from "./live.js";
import { installBox } from "./install.js";
import { powerButtons, setBadge, stateBadge } from "./power.js";
import {
  confirmDialog,
  errorText,
  formatBytes,
  formatDuration,
  h,
  importFresh,
  keepFocus,
  replace,
  setTitle,
  toast,
} from "./ui.js";

const ALIVE = ["starting", "running", "stopping"];
const TABS = [
  { id: "console", label: "Console", module: "./console.js", mount: "mountConsole" },
  { id: "logs", label: "Logs", module: "./logfiles.js", mount: "mountLogFiles" },
  { id: "files", label: "Files", module: "./files.js", mount: "mountFiles" },
  { id: "stats", label: "Stats", module: "./chart.js", mount: "mountStats" },
  { id: "settings", label: "Settings" },
  { id: "sharing", label: "Sharing", module: "./sharing.js", mount: "mountSharing" },
  { id: "schedules", label: "Schedules", module: "./schedules.js", mount: "mountSchedules" },
  { id: "backups", label: "Backups", module: "./backups.js", mount: "mountBackups" },
];
/** The rights (any one of) that show a tab; "manage" stands for the owner or an ADMIN. */
const TAB_RIGHTS = {
  console: ["console", "commands"],
  logs: ["console"],
  files: ["files"],
  stats: ["console"],
  settings: ["settings", "manage"],
  sharing: ["manage"],
  schedules: ["manage"],
  backups: ["files", "manage"],
};
/** The tab last open per server, so coming back shows the same one. */
const lastTab = new Map();

export async function mount(root, app, [name]) {
  const back = h("a", { class: "back-link", href: "#/servers", text: "← All servers" });
  replace(root, h("section", { class: "stack server-page" }, back, h("p", { class: "muted", text: "Loading…" })));
  setTitle(name);

  let st;
  try {
    st = await app.conn.call("server.status", { server: name });
  } catch (err) {
    const text =
      err.code === STATUS.ENTITY_NOT_FOUND || err.code === STATUS.INVALID_ARGUMENT
        ? `There is no server named “${name}” (or your account may not see it).`
        : `The server could not be loaded: ${errorText(err)}`;
    replace(
      root,
      h(
        "section",
        { class: "stack server-page" },
        back,
        h("h1", { text: name }),
        h("p", { class: "notice notice-error", role: "alert", text }),
      ),
    );
    return null;
  }

  // A status without "rights" (an older daemon) shows everything; the daemon checks anyway.
  const rights = Array.isArray(st.rights) ? [...st.rights, ...(st.manage ? ["manage"] : [])] : null;
  const allowed = (id) => !rights || !TAB_RIGHTS[id] || TAB_RIGHTS[id].some((r) => rights.includes(r));
  const shownTabs = TABS.filter((t) => allowed(t.id));

  let disposed = false;
  let gone = false;
  const cleanups = [];
  const badge = stateBadge(name, st.status);
  // While an install runs the daemon answers Start and Restart "busy": they are not offered then.
  let installing = Boolean(st.install?.running);
  const offered = (actions) =>
    installing && Array.isArray(actions) ? actions.filter((a) => a !== "start" && a !== "restart") : actions;
  const power = powerButtons(app, name, offered(st.actions), { onGone: () => markGone(), onDone: () => refresh() });
  if (rights && !rights.includes("power")) power.el.hidden = true;
  const install = installBox(app, name, st, {
    onDone: () => refresh(),
    onRunning: (running) => {
      installing = running;
      power.setActions(away ? null : offered(st.actions), st.status);
    },
  });
  cleanups.push(install.dispose);
  const goneNote = h("p", { class: "notice notice-error", role: "alert", hidden: true });
  const awayNote = h("p", {
    class: "notice notice-warn server-away",
    hidden: true,
    text: "The connection to the daemon is lost: the state of this server is unknown until it is back.",
  });
  const facts = {};
  const fact = (key, label) => {
    facts[key] = { dd: h("dd", { text: "–" }) };
    facts[key].row = h("div", { class: "fact" }, h("dt", { text: label }), facts[key].dd);
    return facts[key].row;
  };
  const details = h(
    "dl",
    { class: "server-details" },
    fact("pid", "PID"),
    fact("uptime", "Uptime"),
    fact("cpu", "CPU"),
    fact("memory", "Memory"),
    fact("restarts", "Automatic restarts"),
    fact("exit_code", "Exit code"),
    fact("restart_in", "Next restart"),
    fact("last_error", "Last error"),
  );
  let since = performance.now();
  // While the connection is lost nothing is known: no state, no live figures, no actions.
  let away = false;
  // "attempt 1 of 5" from the reason of the state event that entered backoff.
  let attempt = "";

  function show(next) {
    st = next;
    since = performance.now();
    setBadge(badge, away ? null : st.status);
    install.update(away || gone ? null : st);
    power.setActions(away ? null : offered(st.actions), st.status);
    const live = !away && ALIVE.includes(st.status);
    setTitle(`${name} · ${gone ? "destroyed" : away ? "unknown" : st.status}`);
    facts.cpu.dd.textContent = formatCpu(live ? st.cpu : null);
    facts.memory.dd.textContent = formatBytes(live ? st.memory : null);
    const shown = (v) => (v === null || v === undefined || v === "" ? "–" : String(v));
    facts.pid.dd.textContent = shown(live ? st.pid : null);
    facts.restarts.dd.textContent = shown(st.restarts);
    facts.exit_code.dd.textContent = shown(st.exit_code);
    facts.last_error.dd.textContent = shown(st.last_error);
    facts.last_error.row.hidden = !st.last_error;
    tick();
  }

  function tick() {
    const elapsed = (performance.now() - since) / 1000;
    const up = !away && ALIVE.includes(st.status) && typeof st.uptime === "number";
    facts.uptime.dd.textContent = up ? formatDuration(st.uptime + elapsed) : "–";
    const waiting = !away && st.status === "backoff" && typeof st.restart_in === "number";
    facts.restart_in.row.hidden = !waiting;
    if (!waiting) return;
    // Rounded up: "in 1s" until the restart is due, then "now" until it happens.
    const left = Math.ceil(st.restart_in - elapsed);
    const when = left > 0 ? `in ${formatDuration(left)}` : "now";
    facts.restart_in.dd.textContent = attempt ? `${when} (${attempt})` : when;
  }

  function setAway(on) {
    if (away === on || gone) return;
    away = on;
    awayNote.hidden = !on;
    show(st);
  }

  async function refresh() {
    try {
      const next = await app.conn.call("server.status", { server: name });
      if (disposed) return;
      away = false;
      awayNote.hidden = true;
      show(next);
    } catch (err) {
      if (err.code === STATUS.ENTITY_NOT_FOUND) markGone();
    }
  }

  function markGone() {
    if (gone || disposed) return;
    gone = true;
    setTitle(`${name} · destroyed`);
    forget(app, name);
    goneNote.hidden = false;
    replace(goneNote, "This server no longer exists. ", h("a", { href: "#/servers", text: "Back to the list" }));
    power.el.hidden = true;
  }

  // ---- tabs (WAI-ARIA tabs pattern: arrow keys, Home/End, roving tabindex)
  const tablist = h("div", { class: "tabs", role: "tablist", "aria-label": `${name} views` });
  const panels = {};
  const tabs = {};
  const mounted = {};
  for (const t of shownTabs) {
    tabs[t.id] = h("button", {
      type: "button",
      role: "tab",
      class: "tab",
      id: `tab-${t.id}`,
      "aria-controls": `panel-${t.id}`,
      text: t.label,
      on: { click: () => select(t.id), keydown: (e) => tabKey(e, t.id) },
    });
    tablist.append(tabs[t.id]);
    panels[t.id] = h("div", {
      role: "tabpanel",
      class: `tab-panel panel-${t.id}`,
      id: `panel-${t.id}`,
      "aria-labelledby": `tab-${t.id}`,
      tabindex: "0",
      hidden: true,
    });
  }

  function tabKey(event, id) {
    const ids = shownTabs.map((t) => t.id);
    const i = ids.indexOf(id);
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: ids.length - 1 }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    const next = ids[(to + ids.length) % ids.length];
    select(next);
    tabs[next].focus();
  }

  function select(id) {
    lastTab.set(name, id);
    for (const t of shownTabs) {
      const on = t.id === id;
      tabs[t.id].setAttribute("aria-selected", String(on));
      tabs[t.id].tabIndex = on ? 0 : -1;
      panels[t.id].hidden = !on;
    }
    if (!mounted[id]) {
      mounted[id] = true;
      const tab = shownTabs.find((t) => t.id === id);
      (tab.module ? mountModuleTab(tab) : mountSettingsTab)(panels[id]);
    }
  }

  function mountModuleTab(tab) {
    return async (panel) => {
      try {
        const module = await importFresh(tab.module);
        if (disposed) return;
        const stop = await module[tab.mount](panel, app, name, st);
        if (typeof stop === "function") {
          if (disposed) stop();
          else cleanups.push(stop);
        }
      } catch (err) {
        console.warn(`${tab.id} view unavailable`, err);
        const text = `The ${tab.label.toLowerCase()} view is not available: ${err.message}`;
        replace(panel, h("p", { class: "notice", text }));
      }
    };
  }

  async function mountSettingsTab(panel) {
    const formBox = h("div", { class: "settings-box" });
    const canChange = !rights || rights.includes("settings");
    replace(panel, h("div", { class: "stack" }, canChange ? formBox : null, !rights || rights.includes("manage") ? destroySection() : null));
    if (!canChange) return;
    try {
      const { mountSettings } = await importFresh("./forms.js");
      if (disposed) return;
      const stop = await mountSettings(formBox, app, name);
      if (typeof stop === "function") {
        if (disposed) stop();
        else cleanups.push(stop);
      }
    } catch (err) {
      const text = `The settings could not be loaded: ${errorText(err)}`;
      replace(formBox, h("p", { class: "notice notice-error", text }));
    }
  }

  function destroySection() {
    const files = h("input", { type: "checkbox", id: "destroy-files" });
    const button = h("button", {
      type: "button",
      class: "btn btn-danger",
      text: "Destroy server",
      on: { click: () => destroy(button, files) },
    });
    return h(
      "section",
      { class: "card danger-zone stack", "aria-labelledby": "danger-title" },
      h("h2", { id: "danger-title", text: "Destroy" }),
      h("p", {
        class: "muted",
        text: "Destroying removes the server from leosuite; a running server is stopped first.",
      }),
      h(
        "div",
        { class: "check-row" },
        files,
        h("label", { for: "destroy-files", text: "Also delete its files (world data, console logs)" }),
      ),
      h("div", {}, button),
    );
  }

  async function destroy(button, files) {
    const deleting = files.checked;
    const what = deleting
      ? "Its files are deleted too; this cannot be undone."
      : "Its files are kept on disk.";
    const sure = await confirmDialog(`Destroy server “${name}”? ${what}`, {
      confirmLabel: "Destroy",
      danger: true,
    });
    if (!sure) {
      button.focus();
      return;
    }
    button.disabled = true;
    button.textContent = "Destroying…";
    try {
      await app.conn.call("server.destroy", { server: name, delete_files: deleting });
      forget(app, name);
      toast(`Server ${name} destroyed${deleting ? " with its files" : ""}.`, "ok");
      app.navigate("#/servers");
    } catch (err) {
      toast(`Destroying ${name} failed: ${errorText(err)}`, "error");
      if (err.code === STATUS.ENTITY_NOT_FOUND) markGone();
      button.disabled = false;
      button.textContent = "Destroy server";
      keepFocus(button);
    }
  }

  replace(
    root,
    h(
      "section",
      { class: "stack server-page", "aria-labelledby": "server-title" },
      back,
      h(
        "div",
        { class: "page-head server-head" },
        h("h1", { id: "server-title", class: "server-title", text: name }),
        badge,
      ),
      h(
        "p",
        { class: "server-type muted" },
        h("span", { class: "mono", text: st.type || "" }),
        st.description ? ` — ${st.description}` : "",
      ),
      goneNote,
      awayNote,
      power.el,
      install.el,
      h("div", { class: "server-summary card" }, details),
      tablist,
      shownTabs.map((t) => panels[t.id]),
    ),
  );
  show(st);
  const firstTab = shownTabs.find((t) => t.id === lastTab.get(name)) || shownTabs[0];
  if (firstTab) select(firstTab.id);
  tablist.hidden = !firstTab; // no right that has a tab (power alone): no empty tab list

  cleanups.push(
    watch(app, {
      onState(e) {
        if (e.server !== name) return;
        if (e.new === "backoff") attempt = /attempt \d+ of \d+/.exec(e.reason || "")?.[0] || "";
        // The countdown of an earlier backoff is stale: the status answer brings the new one.
        show({ ...st, status: e.new, actions: e.actions, restart_in: null });
        refresh();
      },
      onStats(servers) {
        const s = servers[name];
        // The state follows events only: a sample may be older than the last event.
        if (s) show({ ...st, ...s, status: st.status, actions: st.actions });
      },
      onLog(entry) {
        if (entry.topic === "server" && entry.message === `destroyed server ${name}`) markGone();
        else if (entry.topic === "server" && entry.message?.startsWith(`destroyed server ${name} `)) markGone();
      },
    }),
  );
  const onConn = (ev) => {
    if (ev.detail?.state !== "open") setAway(true);
    else if (away) refresh();
  };
  app.conn.addEventListener("state", onConn);
  cleanups.push(() => app.conn.removeEventListener("state", onConn));
  const timer = setInterval(tick, 1000);
  cleanups.push(() => clearInterval(timer));

  return () => {
    disposed = true;
    for (const fn of cleanups.splice(0)) {
      try {
        fn();
      } catch (err) {
        console.error(err);
      }
    }
  };
}
