// The Files tab's dialogs: a name to give (new folder, rename), checked before it is
// sent: one name in the folder shown, never a path.

import { h } from "./ui.js";

/** Why ``name`` cannot name an entry of the folder shown, or "" if it can. */
export function nameProblem(name) {
  if (!name) return "Give a name.";
  if (name.includes("/")) return "A name cannot contain “/”: give one name in this folder.";
  if (name === "." || name === "..") return `“${name}” is not a name.`;
  if (name.includes("\0")) return "A name cannot contain a NUL character.";
  if (new TextEncoder().encode(name).length > 255) return "A name is at most 255 bytes long.";
  return "";
}

/**
 * A modal dialog asking for a name. ``submit(name)`` runs on OK: it resolves when done
 * (the dialog closes) or throws an error whose message is shown in the dialog, which
 * stays open. Resolves true once submitted, false when cancelled.
 */
export function askName({ title, label, value = "", confirmLabel, submit }) {
  return new Promise((resolve) => {
    const id = `name-${Math.random().toString(36).slice(2)}`;
    const input = h("input", {
      id,
      type: "text",
      value,
      autocomplete: "off",
      spellcheck: "false",
      "aria-describedby": `${id}-error`,
    });
    const problem = h("p", { id: `${id}-error`, class: "field-error", role: "alert" });
    const ok = h("button", { type: "submit", class: "btn btn-primary", text: confirmLabel });
    const cancel = h("button", { type: "button", class: "btn", text: "Cancel", on: { click: () => dialog.close() } });
    const form = h(
      "form",
      { class: "stack", novalidate: true },
      h("div", { class: "field" }, h("label", { for: id, text: label }), input, problem),
      h("div", { class: "dialog-actions" }, cancel, ok),
    );
    const dialog = h(
      "dialog",
      { class: "dialog files-dialog", "aria-labelledby": `${id}-title` },
      h("h2", { id: `${id}-title`, text: title }),
      form,
    );
    let done = false;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = input.value.trim();
      const why = nameProblem(name);
      if (why) {
        input.setAttribute("aria-invalid", "true");
        problem.textContent = why;
        input.focus();
        return;
      }
      ok.disabled = true;
      try {
        await submit(name);
        done = true;
        dialog.close();
      } catch (err) {
        input.setAttribute("aria-invalid", "true");
        problem.textContent = err.message;
        ok.disabled = false;
        input.focus();
      }
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(done);
    });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
    // A rename starts with the name's stem selected, so typing replaces it.
    const dot = value.lastIndexOf(".");
    input.setSelectionRange(0, dot > 0 ? dot : value.length);
  });
}
