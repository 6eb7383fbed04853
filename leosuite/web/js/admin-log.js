// #/admin/log: the audit log, newest first, with filters (level, topic, user, text,
// session, time range) and paging. Live: on the newest page, entries that pass the
// filters appear as they are written (events.subscribe log events); "Pause" holds
// them back and counts them until "Resume".

import { adminFrame, dataTable, fieldText, formatTime, localToIso, refusalText } from "./admin-common.js";
import { watch } from "./live.js";
import { h, replace } from "./ui.js";

const PAGE_SIZE = 50;
const LEVELS = ["debug", "info", "warning", "error"];
const LEVEL_CHOICES = [
  ["", "Any level"],
  ["info", "Info and above"],
  ["warning", "Warnings and errors"],
  ["error", "Errors only"],
];
const TEXT_FILTERS = [
  ["topic", "Topic", "One topic, e.g. auth, admin, Ban, Status."],
  ["user", "User", "Part of the user: its name, address or id."],
  ["contains", "Text", "Part of the message."],
  ["session", "Session", "A server's name, or a chat session's name or id."],
];

export async function mount(root, app) {
  const body = adminFrame(root, app, "log", "Audit log");
  if (!body) return undefined;

  const inputs = {};
  const level = h("select", { id: "log-level", name: "level" }, LEVEL_CHOICES.map(([v, t]) => h("option", { value: v, text: t })));
  inputs.level = level;
  const fieldsEls = [h("div", { class: "field" }, h("label", { for: "log-level", text: "Level" }), level)];
  for (const [name, label, help] of TEXT_FILTERS) {
    const input = h("input", { id: `log-${name}`, name, autocomplete: "off", spellcheck: "false", "aria-describedby": `log-${name}-help` });
    inputs[name] = input;
    fieldsEls.push(h("div", { class: "field" }, h("label", { for: `log-${name}`, text: label }), input, h("span", { id: `log-${name}-help`, class: "help", text: help })));
  }
  for (const [name, label] of [["after", "From"], ["before", "To"]]) {
    const input = h("input", { id: `log-${name}`, name, type: "datetime-local", step: "1" });
    inputs[name] = input;
    fieldsEls.push(h("div", { class: "field" }, h("label", { for: `log-${name}`, text: label }), input));
  }
  const problem = h("p", { class: "field-error", role: "alert", hidden: true });
  const clear = h("button", { type: "button", class: "btn", text: "Clear filters" });
  const form = h(
    "form",
    { class: "card stack log-filters", "aria-label": "Filters", novalidate: true },
    h("div", { class: "admin-form-grid" }, fieldsEls),
    problem,
    h("div", { class: "row" }, h("button", { type: "submit", class: "btn btn-primary", text: "Apply filters" }), clear),
  );

  const pause = h("button", { type: "button", class: "btn", "aria-pressed": "false", text: "Pause live" });
  const liveState = h("span", { class: "log-live", role: "status" });
  const pending = h("button", { type: "button", class: "btn btn-small", hidden: true });
  const newer = h("button", { type: "button", class: "btn btn-small", text: "Newer" });
  const older = h("button", { type: "button", class: "btn btn-small", text: "Older" });
  const pageInfo = h("span", { class: "muted", role: "status" });
  const table = dataTable("Audit log entries, newest first", ["Time", "Level", "Topic", "User", "Session", "Message"]);
  replace(
    body,
    form,
    h("div", { class: "row log-bar" }, pause, liveState, pending),
    table.el,
    h("nav", { class: "row log-paging", "aria-label": "Pages of the log" }, newer, pageInfo, older),
  );

  let disposed = false;
  let page = 1;
  let last = 1;
  let total = 0;
  let filters = {};
  let sessions = [];
  let paused = false;
  let held = 0;
  let loading = 0;

  function readFilters() {
    const f = {};
    for (const [name, el] of Object.entries(inputs)) {
      const value = name === "after" || name === "before" ? localToIso(el.value) : el.value.trim();
      if (value) f[name] = value;
    }
    return f;
  }

  async function load() {
    const mine = ++loading;
    try {
      const answer = await app.conn.call("get_logs", { p: page, ps: PAGE_SIZE, sort: "desc", ...filters });
      if (disposed || mine !== loading) return;
      problem.hidden = true;
      total = answer.meta.total;
      last = answer.meta.last;
      sessions = (answer.meta.sessions || []).map((s) => s.toLowerCase());
      held = 0;
      replace(table.tbody, answer.data.map((e) => row({ id: e.id, ...e.attributes })));
      if (!answer.data.length) replace(table.tbody, h("tr", {}, h("td", { colspan: "6", class: "muted", text: "No entry matches." })));
      showState();
    } catch (err) {
      if (disposed || mine !== loading) return;
      const field = err?.field;
      problem.textContent = field ? fieldText(err) : `The log could not be read: ${refusalText(err)}`;
      problem.hidden = false;
      if (field && inputs[field]) inputs[field].setAttribute("aria-invalid", "true");
    }
  }

  function row(e) {
    return h(
      "tr",
      { dataset: { level: e.level, id: String(e.id || "") } },
      h("td", { class: "nowrap", text: formatTime(e.timestamp) }),
      h("td", {}, h("span", { class: `badge level-${e.level}`, text: e.level })),
      h("td", { text: e.topic }),
      h("td", { class: "mono", text: e.user === ";;" ? "" : e.user }),
      h("td", { class: "mono", text: e.session }),
      h("td", { class: "log-message", text: e.message }),
    );
  }

  function showState() {
    newer.disabled = page <= 1;
    older.disabled = page >= last;
    pageInfo.textContent = `Page ${page} of ${last} · ${total} entr${total === 1 ? "y" : "ies"}`;
    pause.textContent = paused ? "Resume live" : "Pause live";
    pause.setAttribute("aria-pressed", String(paused));
    liveState.textContent = paused ? "Live updates paused." : page === 1 ? "Live: new entries appear here." : "";
    pending.hidden = held === 0;
    pending.textContent = `${held} new entr${held === 1 ? "y" : "ies"}: show`;
  }

  /** Whether a live entry passes the filters (as the daemon's search would). */
  function matches(e) {
    const f = filters;
    const lower = (t) => String(t ?? "").toLowerCase();
    if (f.level && LEVELS.indexOf(e.level) < LEVELS.indexOf(f.level)) return false;
    if (f.topic && lower(e.topic) !== lower(f.topic)) return false;
    if (f.user && !lower(e.user).includes(lower(f.user))) return false;
    if (f.contains && !lower(e.message).includes(lower(f.contains))) return false;
    if (f.session && !sessions.includes(lower(e.session))) return false;
    if (f.after && !(e.timestamp > Date.parse(f.after) / 1000)) return false;
    if (f.before && !(e.timestamp < Date.parse(f.before) / 1000)) return false;
    return true;
  }

  const stop = watch(app, {
    onLog: (e) => {
      if (disposed || !matches(e)) return;
      // An entry written while the page was being read may be in both: show it once.
      if (e.id && table.tbody.querySelector(`tr[data-id="${Number(e.id)}"]`)) return;
      if (paused || page !== 1) {
        held += 1;
      } else {
        const empty = table.tbody.querySelector("td[colspan]");
        if (empty) empty.parentElement.remove();
        table.tbody.prepend(row(e));
        while (table.tbody.children.length > PAGE_SIZE) table.tbody.lastElementChild.remove();
        total += 1;
        last = Math.max(1, Math.ceil(total / PAGE_SIZE));
      }
      showState();
    },
    onReconnect: () => load(),
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    for (const el of Object.values(inputs)) el.removeAttribute("aria-invalid");
    filters = readFilters();
    page = 1;
    load();
  });
  clear.addEventListener("click", () => {
    form.reset();
    for (const el of Object.values(inputs)) el.removeAttribute("aria-invalid");
    filters = {};
    page = 1;
    load();
  });
  pause.addEventListener("click", () => {
    paused = !paused;
    if (!paused && held) {
      page = 1;
      load();
    }
    showState();
  });
  pending.addEventListener("click", () => {
    paused = false;
    page = 1;
    load();
  });
  newer.addEventListener("click", () => {
    page = Math.max(1, page - 1);
    load();
  });
  older.addEventListener("click", () => {
    page = Math.min(last, page + 1);
    load();
  });

  await load();
  return () => {
    disposed = true;
    stop();
  };
}
