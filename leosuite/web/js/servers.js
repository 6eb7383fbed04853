// #/servers: every server this account may see, as cards with a live state badge,
// CPU and memory sparklines, uptime and the power buttons; a name filter, and for ADMIN
// accounts each server's owner and an owner filter. While the connection is lost every
// state is unknown and no action is offered.

import { STATUS } from "./api.js";
import { historyOf, forget, sparkline, watch } from "./live.js";
import { powerButtons, setBadge, stateBadge } from "./power.js";
import { serverFilter } from "./server-filter.js";
import { errorText, formatDuration, h, replace } from "./ui.js";

const ALIVE = ["starting", "running", "stopping"];

export async function mount(root, app) {
  const canCreate = app.can("server.create");
  // ADMIN accounts see every account's servers: the list says whose each one is.
  const admin = app.can("admin");
  const status = h("p", { class: "muted", role: "status", text: "Loading servers…" });
  const grid = h("div", { class: "server-grid" });
  const filter = serverFilter({ admin, me: app.user?.username || "", onChange: () => applyFilter() });
  filter.el.hidden = true;
  const shown = h("p", { class: "filter-count muted", role: "status" });
  const awayNote = h("p", {
    class: "notice notice-warn servers-away",
    hidden: true,
    text: "The connection to the daemon is lost: the state of every server is unknown until it is back.",
  });
  replace(
    root,
    h(
      "section",
      { class: "stack servers-page", "aria-labelledby": "servers-title" },
      h(
        "div",
        { class: "page-head" },
        h("h1", { id: "servers-title", text: "Servers" }),
        canCreate ? h("a", { class: "btn btn-primary", href: "#/new", text: "New server" }) : null,
      ),
      awayNote,
      filter.el,
      shown,
      status,
      grid,
    ),
  );

  const cards = new Map();
  let owners = {};
  let disposed = false;
  let loading = null;
  let again = false;
  // While the connection is lost nothing is known: no state, no live figures, no actions.
  let away = false;

  /** (Re)load the whole list; calls made meanwhile run once more afterwards. */
  function reload() {
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      try {
        const [answer, listing] = await Promise.all([
          app.conn.call("server.status", {}),
          admin ? app.conn.call("server.list", {}) : null,
        ]);
        if (disposed) return;
        owners = listing?.owners || {};
        setAway(false);
        render(answer?.servers || {});
      } catch (err) {
        if (!disposed) showLoadError(err);
      } finally {
        loading = null;
        if (again && !disposed) {
          again = false;
          reload();
        }
      }
    })();
    return loading;
  }

  function showLoadError(err) {
    status.hidden = false;
    status.className = "";
    replace(
      status,
      h("span", { class: "notice notice-error", text: `The servers could not be loaded: ${errorText(err)} ` }),
      h("button", { type: "button", class: "btn btn-small", text: "Retry", on: { click: () => reload() } }),
    );
  }

  function render(servers) {
    const names = Object.keys(servers).sort();
    for (const name of [...cards.keys()]) if (!(name in servers)) removeCard(name, false);
    let previous = null;
    for (const name of names) {
      let card = cards.get(name);
      if (!card) {
        card = makeCard(name, servers[name]);
        cards.set(name, card);
      } else {
        card.apply(servers[name]);
      }
      // Keep the cards in name order (new ones slot in where they belong).
      const want = previous ? previous.el.nextSibling : grid.firstChild;
      if (want !== card.el) grid.insertBefore(card.el, want);
      previous = card;
    }
    filter.setOwners(names.map((name) => owners[name] ?? null));
    for (const [name, card] of cards) card.setOwner(owners[name] ?? null);
    showEmpty();
  }

  /** Show the cards the filter lets through and say how many that is. */
  function applyFilter() {
    let count = 0;
    for (const [name, card] of cards) {
      const pass = filter.matches(name, owners[name] ?? null);
      card.el.hidden = !pass;
      if (pass) count += 1;
    }
    const filtering = cards.size > 0 && filter.active();
    shown.hidden = !filtering;
    shown.textContent = !filtering
      ? ""
      : count
        ? `Showing ${count} of ${cards.size} servers.`
        : `No server matches the filter (${cards.size} in all).`;
  }

  function setAway(on) {
    if (away === on) return;
    away = on;
    awayNote.hidden = !on;
    for (const card of cards.values()) card.apply(card.st);
  }

  function showEmpty() {
    filter.el.hidden = !cards.size;
    applyFilter();
    if (cards.size) {
      status.hidden = true;
      replace(status);
      return;
    }
    status.hidden = false;
    status.className = "empty-state card stack";
    replace(
      status,
      h("strong", { text: "No servers yet." }),
      canCreate
        ? [
            h("span", {
              text:
                "A server is a game server process that leosuite starts, watches and restarts. " +
                "Create one from a type: demo-game is a small simulator to try leosuite with.",
            }),
            h("span", {}, h("a", { class: "btn btn-primary", href: "#/new", text: "Create your first server" })),
          ]
        : h("span", {
            text:
              "Your account has no servers. An administrator can create one for you, " +
              "or give your account the HOST flag so you can create your own.",
          }),
    );
  }

  function removeCard(name, announce = true) {
    const card = cards.get(name);
    if (!card) return;
    card.destroy();
    cards.delete(name);
    forget(app, name);
    if (announce) showEmpty();
  }

  function makeCard(name, st) {
    const id = `server-${name}`;
    const badge = stateBadge(name, st.status);
    const power = powerButtons(app, name, st.actions, {
      onGone: () => removeCard(name),
      onDone: () => refreshOne(name),
    });
    // An account the server is shared with without the power right gets no power buttons.
    if (Array.isArray(st.rights) && !st.rights.includes("power")) power.el.hidden = true;
    const cpu = sparkline("cpu");
    const memory = sparkline("memory");
    const uptime = h("span", { class: "uptime spark-value", text: "–" });
    const note = h("p", { class: "card-note", hidden: true });
    const owner = admin ? h("span", { class: "owner-name" }) : null;
    const el = h(
      "article",
      { class: "card server-card", dataset: { server: name }, "aria-labelledby": id },
      h(
        "div",
        { class: "server-card-head" },
        h("h2", { class: "server-name", id }, h("a", { href: `#/servers/${name}`, text: name })),
        badge,
      ),
      h("p", { class: "server-type muted" }, h("span", { class: "mono", text: st.type || "" })),
      owner ? h("p", { class: "server-owner muted" }, "Owner ", owner) : null,
      h(
        "div",
        { class: "sparks" },
        h("div", { class: "metric" }, h("span", { class: "spark-label", text: "Uptime" }), uptime),
        cpu.el,
        memory.el,
      ),
      note,
      power.el,
    );
    const card = {
      el,
      st,
      since: performance.now(),
      apply(next) {
        card.st = next;
        card.since = performance.now();
        setBadge(badge, away ? null : next.status);
        power.setActions(away ? null : next.actions, next.status);
        const live = !away && ALIVE.includes(next.status);
        cpu.update(historyOf(app, name), live ? next.cpu : null);
        memory.update(historyOf(app, name), live ? next.memory : null);
        card.tick();
      },
      setOwner(name) {
        if (!owner) return;
        owner.textContent = name || "none (account deleted)";
        owner.classList.toggle("owner-none", !name);
      },
      tick() {
        const s = card.st;
        const elapsed = (performance.now() - card.since) / 1000;
        const live = !away && ALIVE.includes(s.status) && typeof s.uptime === "number";
        uptime.textContent = live ? formatDuration(s.uptime + elapsed) : "–";
        const lines = [];
        if (away) {
          note.hidden = true;
          return;
        }
        if (s.status === "backoff" && typeof s.restart_in === "number") {
          lines.push(`Restarting automatically in ${formatDuration(Math.max(0, s.restart_in - elapsed))}.`);
        }
        if (["crashed", "backoff"].includes(s.status)) {
          if (s.last_error) lines.push(s.last_error);
          else if (s.exit_code !== null && s.exit_code !== undefined) lines.push(`Exited with code ${s.exit_code}.`);
        }
        note.hidden = !lines.length;
        note.textContent = lines.join(" ");
      },
      destroy() {
        cpu.destroy();
        memory.destroy();
        el.remove();
      },
    };
    card.apply(st);
    return card;
  }

  async function refreshOne(name) {
    try {
      const st = await app.conn.call("server.status", { server: name });
      if (!disposed && cards.has(name)) cards.get(name).apply(st);
    } catch (err) {
      if (err.code === STATUS.ENTITY_NOT_FOUND) removeCard(name);
    }
  }

  const stop = watch(app, {
    onState(e) {
      const card = cards.get(e.server);
      if (!card) {
        reload();
        return;
      }
      card.apply({ ...card.st, status: e.new, actions: e.actions });
      refreshOne(e.server);
    },
    onStats(servers) {
      for (const [name, s] of Object.entries(servers)) {
        const card = cards.get(name);
        if (!card) {
          reload(); // started by someone else and not listed yet
          continue;
        }
        // The badge follows state events only: a sample may be older than the last event.
        card.apply({ ...card.st, ...s, status: card.st.status, actions: card.st.actions });
      }
    },
    onLog(entry) {
      // ADMIN accounts see audit entries: servers created or destroyed elsewhere.
      if (entry.topic === "server" && /^(created|destroyed) server /.test(entry.message || "")) reload();
    },
  });
  // Any state but "open" is a loss; the first "open" after it reloads the list (events
  // were missed meanwhile).
  const conn = app.conn;
  const onConn = (ev) => {
    if (ev.detail?.state !== "open") setAway(true);
    else if (away) reload();
  };
  conn.addEventListener("state", onConn);
  const timer = setInterval(() => cards.forEach((c) => c.tick()), 1000);

  await reload();

  return () => {
    disposed = true;
    conn.removeEventListener("state", onConn);
    stop();
    clearInterval(timer);
    for (const card of cards.values()) card.destroy();
    cards.clear();
  };
}
