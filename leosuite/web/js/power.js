// Pieces shared by the server list and the server page: the live state badge and the
// power buttons (start / stop / restart / kill / force kill), showing exactly the
// actions the daemon's latest status or state event lists (its ``actions`` field).

import { STATUS } from "./api.js";
import { watch } from "./live.js";
import { confirmDialog, errorText, h, toast } from "./ui.js";

export const STATES = ["stopped", "starting", "running", "stopping", "crashed", "backoff"];

/** The power actions in the order the buttons appear. */
export const ACTIONS = [
  { action: "start", label: "Start", cls: "btn-primary" },
  { action: "stop", label: "Stop" },
  { action: "restart", label: "Restart" },
  { action: "kill", label: "Kill", cls: "btn-danger" },
  {
    action: "force_kill",
    label: "Force kill",
    cls: "btn-danger",
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
  for (const spec of ACTIONS) {
    const button = h("button", {
      type: "button",
      class: `btn btn-small ${spec.cls || ""}`.trim(),
      text: spec.label,
      dataset: { action: spec.action },
      on: { click: () => run(spec, button) },
    });
    buttons.set(spec.action, button);
    el.append(button);
  }

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
    const start = buttons.get("start");
    const early = state === "backoff";
    start.textContent = early ? "Start now" : "Start";
    if (early) start.title = "Start at once instead of waiting for the automatic restart";
    else start.removeAttribute("title");
    render();
  }

  function render() {
    const focused = [...buttons.values()].find((b) => b === document.activeElement);
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
    if (focused && focused.hidden) {
      const next = [...buttons.values()].find((b) => !b.hidden);
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
