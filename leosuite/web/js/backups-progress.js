// The progress of a server's backup or restore on the Backups tab: what runs, a bar
// (role=progressbar with aria-valuenow once the size is known) and a quiet live region
// that says when it ends. Fed by backup.status answers and backup.progress events.

import { formatBytes, h } from "./ui.js";

/** The phases in which a backup or restore is still under way. */
export const ACTIVE = ["commands", "archiving", "restoring"];

const WHAT = {
  commands: "Running the commands before the backup",
  archiving: "Archiving the server's files",
  restoring: "Restoring the backup",
};

/** ``{el, show(progress), running}``: ``show`` takes {phase, done_bytes, total_bytes}. */
export function progressBox(name) {
  const label = h("span", { class: "backup-progress-label", id: "backup-progress-label" });
  const fill = h("div", { class: "backup-bar-fill" });
  const bar = h(
    "div",
    {
      class: "backup-bar",
      role: "progressbar",
      "aria-labelledby": "backup-progress-label",
      "aria-valuemin": "0",
      "aria-valuemax": "100",
    },
    fill,
  );
  const live = h("p", { class: "visually-hidden", role: "status", "aria-live": "polite" });
  const box = h("div", { class: "backup-progress card stack", hidden: true }, label, bar);
  const el = h("div", {}, box, live);
  const state = { running: false };

  function show(p) {
    const phase = p?.phase;
    if (!ACTIVE.includes(phase)) {
      if (state.running && (phase === "done" || phase === "failed")) {
        live.textContent = phase === "done" ? `${name}: finished.` : `${name}: failed.`;
      }
      state.running = false;
      box.hidden = true;
      // The next job starts from an empty bar.
      bar.removeAttribute("aria-valuenow");
      bar.removeAttribute("aria-valuetext");
      fill.style.width = "";
      return;
    }
    if (!state.running) live.textContent = `${WHAT[phase]}…`;
    state.running = true;
    box.hidden = false;
    const done = Number(p.done_bytes) || 0;
    const total = Number(p.total_bytes) || 0;
    if (total > 0 && phase !== "commands") {
      const pct = Math.min(100, Math.floor((100 * done) / total));
      bar.setAttribute("aria-valuenow", String(pct));
      bar.setAttribute("aria-valuetext", `${pct}% (${formatBytes(done)} of ${formatBytes(total)})`);
      bar.classList.remove("backup-bar-busy");
      fill.style.width = `${pct}%`;
      label.textContent = `${WHAT[phase]}: ${pct}% (${formatBytes(done)} of ${formatBytes(total)})`;
    } else {
      // The size is not known yet: no value, a moving bar.
      bar.removeAttribute("aria-valuenow");
      bar.removeAttribute("aria-valuetext");
      bar.classList.add("backup-bar-busy");
      fill.style.width = "";
      label.textContent = `${WHAT[phase]}…`;
    }
  }

  return {
    el,
    show,
    get running() {
      return state.running;
    },
  };
}
