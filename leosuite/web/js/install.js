// A server's install, on its page: whether its type's install steps ran, an Install
// (Reinstall) button, and while one runs the step and a progress bar, from the
// daemon's "install" events. Shown only for types that have install steps, to
// accounts that may start the server.

import { errorText, h, toast } from "./ui.js";

const AT_REST = ["stopped", "crashed"];

/**
 * The install box of server ``name``: ``{el, update(status), dispose()}``.
 * ``update(null)`` (the connection is lost) disables it; ``onDone`` runs after an
 * install ends (the page refreshes its status); ``onRunning(running)`` whenever an
 * install starts or ends (the page offers no Start meanwhile).
 */
export function installBox(app, name, status, { onDone, onRunning } = {}) {
  let st = status;
  let running = false;
  // What onRunning was last told (the page starts from the status it has).
  let told = Boolean(status?.install?.running);
  let away = false;
  const summary = h("p", { class: "install-summary" });
  const button = h("button", {
    type: "button",
    class: "btn",
    text: "Install",
    on: { click: () => install() },
  });
  const step = h("span", { class: "install-step" });
  const bar = h("progress", { max: "100", "aria-label": `Install progress of ${name}` });
  const progress = h("div", { class: "files-progress install-progress", hidden: true }, step, bar);
  const live = h("p", { class: "visually-hidden", role: "status", "aria-live": "polite" });
  const el = h(
    "section",
    { class: "card stack install-box", "aria-label": "Install", hidden: true },
    h("div", { class: "files-progress" }, summary, button),
    progress,
    live,
  );

  function update(next) {
    away = !next;
    if (next) st = next;
    render();
  }

  function render() {
    const info = st?.install;
    const rights = Array.isArray(st?.rights) ? st.rights : null;
    el.hidden = !info || Boolean(rights && !rights.includes("power"));
    if (!info) return;
    running = running || Boolean(info.running);
    if (running !== told) {
      told = running;
      onRunning?.(running);
    }
    const steps = `${info.steps} install step${info.steps === 1 ? "" : "s"}`;
    summary.textContent = running
      ? `Installing (${steps})…`
      : info.done
        ? `Installed: its ${steps} ran with the current settings.`
        : `Not installed with the current settings: the ${steps} run before the next start, or now.`;
    button.textContent = info.done ? "Reinstall" : "Install";
    button.disabled = away || running || !AT_REST.includes(st.status);
    button.title = AT_REST.includes(st.status) ? "" : "Stop the server to install it again.";
    progress.hidden = !running;
  }

  function onEvent(e) {
    if (e?.kind !== "install" || e.server !== name) return;
    if (e.phase === "begin" || e.phase === "step") {
      running = true;
      bar.removeAttribute("value"); // indeterminate until a download reports its size
    }
    if (e.phase === "step") step.textContent = `Step ${e.step} of ${e.steps}: ${e.label}`;
    if (e.phase === "progress" && typeof e.total === "number" && e.total > 0) {
      bar.value = Math.floor((100 * e.done) / e.total);
      live.textContent = `${bar.value}%`;
    }
    if (["done", "failed", "cancelled"].includes(e.phase)) {
      running = false;
      live.textContent = e.message || "";
    }
    render();
  }

  async function install() {
    running = true;
    render();
    try {
      const answer = await app.conn.call("server.install", { server: name });
      if (answer.installed) toast(`${name}: installed.`, "ok");
      else toast(`${name}: ${answer.error || "install failed"}`, "error");
    } catch (err) {
      toast(`Installing ${name} failed: ${errorText(err)}`, "error");
    } finally {
      running = false;
      onDone?.();
    }
  }

  const off = app.conn.onPush("event", onEvent);
  render();
  return { el, update, dispose: off };
}
