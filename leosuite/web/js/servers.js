// #/servers: every server this account may see, as cards with a live state badge,
// CPU and memory sparklines, uptime and the power buttons.

import { STATUS } from "./api.js";
import { historyOf, forget, sparkline, watch } from "./live.js";
import { powerButtons, setBadge, stateBadge } from "./power.js";
import { errorText, formatDuration, h, replace } from "./ui.js";

const ALIVE = ["starting", "running", "stopping"];

export async function mount(root, app) {
  const canCreate = app.can("server.create");
  const status = h("p", { class: "muted", role: "status", text: "Loading servers…" });
  const grid = h("div", { class: "server-grid" });
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
      status,
      grid,
    ),
  );

  const cards = new Map();
  let disposed = false;
  let loading = null;
  let again = false;

  /** (Re)load the whole list; calls made meanwhile run once more afterwards. */
  function reload() {
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      try {
        const answer = await app.conn.call("server.status", {});
        if (!disposed) render(answer?.servers || {});
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
    showEmpty();
  }

  function showEmpty() {
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
    const cpu = sparkline("cpu");
    const memory = sparkline("memory");
    const uptime = h("span", { class: "uptime spark-value", text: "–" });
    const note = h("p", { class: "card-note", hidden: true });
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
        setBadge(badge, next.status);
        power.setActions(next.actions);
        const live = ALIVE.includes(next.status);
        cpu.update(historyOf(app, name), live ? next.cpu : null);
        memory.update(historyOf(app, name), live ? next.memory : null);
        card.tick();
      },
      tick() {
        const s = card.st;
        const elapsed = (performance.now() - card.since) / 1000;
        const live = ALIVE.includes(s.status) && typeof s.uptime === "number";
        uptime.textContent = live ? formatDuration(s.uptime + elapsed) : "–";
        const lines = [];
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
    onReconnect: () => reload(),
  });
  const timer = setInterval(() => cards.forEach((c) => c.tick()), 1000);

  await reload();

  return () => {
    disposed = true;
    stop();
    clearInterval(timer);
    for (const card of cards.values()) card.destroy();
    cards.clear();
  };
}
