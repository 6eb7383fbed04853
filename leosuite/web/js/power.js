// Pieces shared by the server list and the server page: the live state badge and the
// power buttons (start / stop / restart / kill / force kill) shown according to state.

import { STATUS } from "./api.js";
import { confirmDialog, errorText, h, toast } from "./ui.js";

export const STATES = ["stopped", "starting", "running", "stopping", "crashed", "backoff"];

/** Which action is offered in which state (docs/api.md, "Power actions"). */
export const ACTIONS = [
  { action: "start", label: "Start", states: ["stopped", "crashed", "backoff"], cls: "btn-primary" },
  // In backoff a stop cancels the pending automatic restart.
  { action: "stop", label: "Stop", states: ["starting", "running", "backoff"] },
  { action: "restart", label: "Restart", states: ["starting", "running"] },
  { action: "kill", label: "Kill", states: ["starting", "running"], cls: "btn-danger" },
  {
    action: "force_kill",
    label: "Force kill",
    states: ["starting", "running", "stopping"],
    cls: "btn-danger",
    confirm: "Force kill sends SIGKILL at once: the server gets no chance to save. Force kill it?",
  },
];

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
 * The power buttons of server ``name`` as one group: ``{el, setState(state)}``.
 * Each click calls ``server.<action>``, disables its button until the answer, and
 * shows the result or the error in a toast. ``onGone()`` is called when the server
 * no longer exists (ENTITY_NOT_FOUND); ``onDone(answer)`` after a success.
 */
export function powerButtons(app, name, state, { onGone, onDone } = {}) {
  const el = h("div", { class: "power row", role: "group", "aria-label": `Power: ${name}` });
  const buttons = new Map();
  let current = state;
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

  async function run(spec, button) {
    // Busy buttons are aria-disabled, not disabled: a disabled button loses the focus,
    // which would drop a keyboard user at the top of the page after every action.
    if (button.getAttribute("aria-disabled") === "true") return;
    if (spec.confirm) {
      const sure = await confirmDialog(`${name}: ${spec.confirm}`, { confirmLabel: spec.label, danger: true });
      if (!sure) {
        button.focus();
        return;
      }
    }
    if (button.getAttribute("aria-disabled") === "true") return; // pressed again meanwhile
    button.setAttribute("aria-disabled", "true");
    button.setAttribute("aria-busy", "true");
    try {
      const answer = await app.conn.call(`server.${spec.action}`, { server: name });
      const now = answer?.status && answer.status !== DONE[spec.action] ? ` (now ${answer.status})` : "";
      toast(`${name} ${DONE[spec.action]}${now}.`, "ok");
      if (onDone) onDone(answer);
    } catch (err) {
      if (err.code === STATUS.ENTITY_NOT_FOUND) {
        toast(`${name} no longer exists.`, "error");
        if (onGone) onGone();
      } else {
        toast(`${spec.label} ${name} failed: ${errorText(err)}`, "error");
      }
    } finally {
      button.removeAttribute("aria-disabled");
      button.removeAttribute("aria-busy");
      setState(current);
    }
  }

  function setState(next) {
    current = next;
    const focused = [...buttons.values()].find((b) => b === document.activeElement);
    for (const spec of ACTIONS) {
      buttons.get(spec.action).hidden = !spec.states.includes(next);
    }
    // The focused button went away (e.g. Start once it is starting): keep the focus
    // in the group instead of dropping it on the page.
    if (focused && focused.hidden) {
      const next = [...buttons.values()].find((b) => !b.hidden);
      if (next) next.focus();
    }
  }

  setState(state);
  return { el, setState };
}
