// Pieces shared by the server list and the server page: the live state badge and the
// power buttons (start / stop / restart / kill / force kill), offering exactly the
// actions the daemon's latest status or state event lists (its ``actions`` field).
// Each says what it does (a tooltip and its accessible description); Kill and Force
// kill ask first, and Force kill sits in a "More" menu except while the server is
// stopping, when it is the one way to hurry the stop.

import { STATUS } from "./api.js";
import { watch } from "./live.js";
import { confirmDialog, errorText, h, toast } from "./ui.js";

export const STATES = ["stopped", "starting", "running", "stopping", "crashed", "backoff"];

/** The power actions in the order the buttons appear. */
export const ACTIONS = [
  { action: "start", label: "Start", cls: "btn-primary", about: "Start the server." },
  {
    action: "stop",
    label: "Stop",
    about:
      "Stop gracefully: the server's stop command, then its stop signal, then SIGKILL, " +
      "each after the stop timeout. Also cancels a pending automatic restart.",
  },
  { action: "restart", label: "Restart", about: "Stop gracefully, then start again." },
  {
    action: "kill",
    label: "Kill",
    cls: "btn-warn",
    about:
      "Skip the stop command: SIGTERM to every process of the server, then SIGKILL after " +
      "the stop timeout. Unsaved progress may be lost.",
    confirm:
      "Kill sends SIGTERM to every process of the server without its stop command (SIGKILL " +
      "follows after the stop timeout): unsaved progress may be lost. Kill it?",
  },
  {
    action: "force_kill",
    label: "Force kill",
    cls: "btn-danger",
    about:
      "SIGKILL to every process of the server at once, without any wait: it gets no chance " +
      "to save. Ends a stop that hangs.",
    confirm: "Force kill sends SIGKILL at once: the server gets no chance to save. Force kill it?",
  },
];

/** How long after a start's answer a crash still counts as "at once" (a toast's life). */
const CRASH_WINDOW_MS = 4000;

const DONE = {
  start: "started",
  stop: "stopped",
  restart: "restarted",
  kill: "killed",
  force_kill: "force-killed",
};

/** ``<span class="badge state-running" data-server data-state>running</span>`` */
export function stateBadge(name, state) {
  const badge = h("span", { class: "badge", dataset: { server: name } });
  setBadge(badge, state);
  return badge;
}

export function setBadge(badge, state) {
  if (badge.dataset.state === (state || "unknown")) return;
  const known = STATES.includes(state) ? state : "unknown";
  badge.className = `badge state-${known}`;
  badge.dataset.state = state || "unknown";
  badge.textContent = state || "unknown";
}

/**
 * The power buttons of server ``name`` as one group: ``{el, setActions(actions)}``.
 * ``actions`` is the ``actions`` list of the server's latest status or state event:
 * exactly those buttons are shown; while it is unknown (not a list) every button is
 * shown disabled. Each click calls ``server.<action>``, disables its button until the
 * answer, and shows the result or the error in a toast. ``onGone()`` is called when
 * the server no longer exists (ENTITY_NOT_FOUND); ``onDone(answer)`` after a success.
 */
export function powerButtons(app, name, actions, { onGone, onDone } = {}) {
  const el = h("div", { class: "power row", role: "group", "aria-label": `Power: ${name}` });
  const buttons = new Map();
  const busy = new Set();
  let offered = null;
  let stopping = false;
  const about = h("div", { hidden: true });
  for (const spec of ACTIONS) {
    const id = `power-about-${name}-${spec.action}`;
    about.append(h("span", { id, text: spec.about }));
    const button = h("button", {
      type: "button",
      class: `btn btn-small ${spec.cls || ""}`.trim(),
      text: spec.label,
      title: spec.about,
      "aria-describedby": id,
      dataset: { action: spec.action },
      on: { click: () => run(spec, button) },
    });
    buttons.set(spec.action, button);
  }
  // The "More" menu: Force kill with what it does, shown on demand.
  const force = buttons.get("force_kill");
  const menu = h(
    "div",
    { class: "power-menu", id: `power-more-${name}`, hidden: true },
    h("p", { class: "power-menu-text", text: ACTIONS.find((a) => a.action === "force_kill").about }),
  );
  const more = h("button", {
    type: "button",
    class: "btn btn-small power-more",
    text: "More",
    title: "More power actions",
    "aria-expanded": "false",
    "aria-controls": menu.id,
    dataset: { more: "" },
    on: { click: () => setMenu(menu.hidden) },
  });
  for (const [action, button] of buttons) if (action !== "force_kill") el.append(button);
  el.append(force, more, menu, about);

  function setMenu(open) {
    menu.hidden = !open;
    more.setAttribute("aria-expanded", String(open));
    render();
  }
  el.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || menu.hidden) return;
    setMenu(false);
    more.focus();
  });

  const usable = (action) => offered !== null && offered.includes(action) && !busy.has(action);

  async function run(spec, button) {
    if (!usable(spec.action)) return;
    if (spec.confirm) {
      const sure = await confirmDialog(`${name}: ${spec.confirm}`, { confirmLabel: spec.label, danger: true });
      if (!sure) {
        button.focus();
        return;
      }
    }
    if (busy.has(spec.action)) return; // pressed again meanwhile
    busy.add(spec.action);
    render();
    const starting = spec.action === "start" || spec.action === "restart";
    const outcome = starting ? startOutcome(app, name, DONE[spec.action]) : null;
    try {
      const answer = await app.conn.call(`server.${spec.action}`, { server: name });
      if (outcome) outcome.answered(answer);
      else toast(`${name} ${DONE[spec.action]}${nowState(answer, DONE[spec.action])}.`, "ok");
      if (onDone) onDone(answer);
    } catch (err) {
      if (outcome) outcome.stop();
      if (err.code === STATUS.ENTITY_NOT_FOUND) {
        toast(`${name} no longer exists.`, "error");
        if (onGone) onGone();
      } else {
        toast(`${spec.label} ${name} failed: ${errorText(err)}`, "error");
      }
    } finally {
      busy.delete(spec.action);
      render();
    }
  }

  /** ``state`` (optional) names the server's state: in backoff Start reads "Start now". */
  function setActions(next, state) {
    offered = Array.isArray(next) ? next.filter((a) => typeof a === "string") : null;
    // Stopping (or a daemon that offers nothing else): Force kill is the action at hand.
    stopping = state === "stopping" || (offered !== null && offered.length === 1);
    const start = buttons.get("start");
    const early = state === "backoff";
    start.textContent = early ? "Start now" : "Start";
    if (early) start.title = "Start at once instead of waiting for the automatic restart";
    else start.removeAttribute("title");
    render();
  }

  function render() {
    const focused = [...buttons.values(), more].find((b) => b === document.activeElement);
    const forceOffered = offered === null || offered.includes("force_kill");
    // Force kill is in the row while stopping, else in the menu (opened or not).
    const inMenu = forceOffered && !stopping && offered !== null;
    if (inMenu && force.parentNode !== menu) menu.append(force);
    else if (!inMenu && force.parentNode !== el) el.insertBefore(force, more);
    more.hidden = !inMenu;
    if (!inMenu && !menu.hidden) {
      menu.hidden = true;
      more.setAttribute("aria-expanded", "false");
    }
    for (const [action, button] of buttons) {
      button.hidden = offered !== null && !offered.includes(action);
      // Unusable buttons are aria-disabled, not disabled: a disabled button loses the
      // focus, which would drop a keyboard user at the top of the page.
      if (usable(action)) button.removeAttribute("aria-disabled");
      else button.setAttribute("aria-disabled", "true");
      if (busy.has(action)) button.setAttribute("aria-busy", "true");
      else button.removeAttribute("aria-busy");
    }
    // The focused button went away (e.g. Start once it is starting): keep the focus
    // in the group instead of dropping it on the page.
    // A moved button (Force kill into or out of the menu) loses the focus: give it back.
    if (focused && (document.activeElement !== focused || !focused.checkVisibility())) {
      const next = [focused, ...buttons.values(), more].find((b) => b.checkVisibility());
      if (next) next.focus();
    }
  }

  setActions(actions);
  return { el, setActions };
}

function nowState(answer, done) {
  return answer?.status && answer.status !== done ? ` (now ${answer.status})` : "";
}

/**
 * The toast of a start or restart says what came of it: the state events of ``name``
 * seen from the call until a toast's life after its answer tell a server that crashed
 * at once (and whether it waits to restart) from one that runs.
 */
function startOutcome(app, name, done) {
  const events = [];
  let shown = null;
  let timer = 0;
  const off = watch(app, {
    onState(e) {
      if (e.server !== name) return;
      events.push(e);
      if (shown && (e.new === "crashed" || e.new === "backoff")) report();
    },
  });

  function crashText() {
    const crash = events.findLast((e) => e.new === "crashed");
    const last = events[events.length - 1];
    let text = `${name} ${done} but crashed at once`;
    if (crash?.reason) text += ` (${crash.reason})`;
    if (last.new === "backoff") text += `; it restarts by itself: ${last.reason || "in backoff"}`;
    else if (last.new === "crashed") text += "; it stays crashed";
    return `${text}.`;
  }

  function report(answer) {
    const last = events[events.length - 1];
    const crashed = last && (last.new === "crashed" || last.new === "backoff");
    if (shown) shown.remove();
    shown = crashed ? toast(crashText(), "error") : toast(`${name} ${done}${nowState(answer, done)}.`, "ok");
    // A crash that waits to restart may still be reported once, later states are not.
    if (crashed && last.new !== "crashed") stop();
  }

  function stop() {
    clearTimeout(timer);
    off();
  }

  return {
    answered(answer) {
      if (answer?.status && !events.length) events.push({ new: answer.status });
      report(answer);
      timer = setTimeout(stop, CRASH_WINDOW_MS);
    },
    stop,
  };
}
