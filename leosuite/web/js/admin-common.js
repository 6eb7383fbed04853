// What the admin pages share: the page frame with the admin sub-navigation, the
// "not allowed" page for accounts without ADMIN, a modal form dialog that shows the
// API's refusal beside the field it names, and date formatting.

import { ApiError, STATUS } from "./api.js";
import { errorText, h, replace } from "./ui.js";

export const SECTIONS = [
  { id: "accounts", label: "Accounts" },
  { id: "bans", label: "Bans" },
  { id: "sessions", label: "Sessions" },
  { id: "log", label: "Audit log" },
];

/**
 * The admin page frame in ``root``: a heading, the sub-navigation with ``section``
 * current, and a body to fill. For an account without ADMIN the page says it is not
 * allowed and ``null`` is returned (the calls refuse anyway).
 */
export function adminFrame(root, app, section, title) {
  if (!app.can("admin")) {
    replace(
      root,
      h(
        "section",
        { class: "stack admin-page", "aria-labelledby": "admin-title" },
        h("h1", { id: "admin-title", text: "Not allowed" }),
        h("p", {
          class: "notice notice-error",
          role: "alert",
          text: "The admin pages are for ADMIN accounts only. Your account cannot use them.",
        }),
        h("p", {}, h("a", { href: "#/servers", text: "Back to your servers" })),
      ),
    );
    document.title = "Not allowed — leosuite";
    return null;
  }
  document.title = `${title} · Admin — leosuite`;
  const body = h("div", { class: "stack" });
  replace(
    root,
    h(
      "section",
      { class: "stack admin-page", "aria-labelledby": "admin-title" },
      h("h1", { id: "admin-title", text: title }),
      h(
        "nav",
        { class: "admin-nav", "aria-label": "Admin sections" },
        SECTIONS.map((s) =>
          h("a", {
            href: `#/admin/${s.id}`,
            text: s.label,
            "aria-current": s.id === section ? "page" : null,
          }),
        ),
      ),
      body,
    ),
  );
  return body;
}

/** A refusal for lack of rights reads as such. */
export function refusalText(err) {
  if (err instanceof ApiError && err.code === STATUS.PERMISSION_DENIED) {
    return `Not allowed: ${errorText(err)}`;
  }
  return errorText(err);
}

/** A refusal shown beside its field: without the field's wire name in front of it. */
export function fieldText(err) {
  const text = errorText(err);
  const prefix = `${err?.field}: `;
  return err?.field && text.startsWith(prefix) ? text.slice(prefix.length) : text;
}

let dialogs = 0;

/**
 * A modal form. ``fields``: [{name, label, type?, value?, help?, required?, options?,
 * autocomplete?, checked?, min?, max?}] (type "checkbox", "select", "datetime-local",
 * "password", "text", "number", "textarea"); ``submit(values)`` runs on OK and resolves
 * when done (the dialog closes), or throws: the message is shown, next to the field
 * the API named when it named one. Resolves what ``submit`` resolved, or null when
 * cancelled. ``extra``: an element shown above the fields; ``cancelLabel`` null: no
 * cancel button (a dialog that only shows something).
 */
export function formDialog({ title, intro = "", extra = null, fields, okLabel = "Save", cancelLabel = "Cancel", danger = false, submit }) {
  const id = `admin-dialog-${++dialogs}`;
  return new Promise((resolve) => {
    const inputs = new Map();
    const errors = new Map();
    const rows = fields.map((f) => fieldRow(id, f, inputs, errors));
    const problem = h("p", { class: "field-error", role: "alert", hidden: true });
    const ok = h("button", { type: "submit", class: danger ? "btn btn-danger" : "btn btn-primary", text: okLabel });
    const cancel = cancelLabel
      ? h("button", { type: "button", class: "btn", text: cancelLabel, on: { click: () => dialog.close() } })
      : null;
    const form = h(
      "form",
      { class: "stack", novalidate: true },
      intro ? h("p", { class: "muted", text: intro }) : null,
      extra,
      rows,
      problem,
      h("div", { class: "dialog-actions" }, cancel, ok),
    );
    const dialog = h(
      "dialog",
      { class: "dialog admin-dialog", "aria-labelledby": `${id}-heading` },
      h("h2", { id: `${id}-heading`, text: title }),
      form,
    );
    let result = null;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      for (const [name, el] of errors) {
        el.hidden = true;
        inputs.get(name).removeAttribute("aria-invalid");
      }
      problem.hidden = true;
      ok.disabled = true;
      try {
        const values = {};
        for (const [name, el] of inputs) values[name] = el.type === "checkbox" ? el.checked : el.value;
        result = (await submit(values)) ?? true;
        dialog.close();
      } catch (err) {
        const field = err?.field || null;
        if (field && errors.has(field)) {
          errors.get(field).textContent = fieldText(err);
          errors.get(field).hidden = false;
          inputs.get(field).setAttribute("aria-invalid", "true");
          inputs.get(field).focus();
        } else {
          problem.textContent = refusalText(err);
          problem.hidden = false;
        }
      } finally {
        ok.disabled = false;
      }
    });
    // The dialog belongs to the page it was opened on (a session that ends leaves it).
    const leave = () => dialog.close();
    window.addEventListener("hashchange", leave);
    dialog.addEventListener("close", () => {
      window.removeEventListener("hashchange", leave);
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
    const first = form.querySelector("input, select, textarea");
    (first || ok).focus();
  });
}

function fieldRow(id, f, inputs, errors) {
  const inputId = `${id}-field-${f.name}`;
  const helpId = f.help ? `${inputId}-help` : null;
  const errorId = `${inputId}-error`;
  const described = [helpId, errorId].filter(Boolean).join(" ");
  let input;
  if (f.type === "select") {
    input = h(
      "select",
      { id: inputId, name: f.name, "aria-describedby": described },
      f.options.map(([value, label]) => h("option", { value, text: label, selected: value === f.value })),
    );
  } else if (f.type === "textarea") {
    input = h("textarea", { id: inputId, name: f.name, rows: 3, "aria-describedby": described });
    input.value = f.value || "";
  } else {
    input = h("input", {
      id: inputId,
      name: f.name,
      type: f.type || "text",
      value: f.type === "checkbox" ? null : f.value ?? "",
      checked: f.type === "checkbox" ? Boolean(f.checked) : null,
      required: f.required || null,
      autocomplete: f.autocomplete || "off",
      min: f.min ?? null,
      max: f.max ?? null,
      "aria-describedby": described,
    });
  }
  inputs.set(f.name, input);
  const error = h("p", { id: errorId, class: "field-error", hidden: true });
  errors.set(f.name, error);
  const label = h("label", { for: inputId, text: f.label, class: f.required ? "required" : null });
  const help = f.help ? h("span", { id: helpId, class: "help", text: f.help }) : null;
  if (f.type === "checkbox") {
    return h("div", { class: "field field-check" }, h("div", { class: "row" }, input, label), help, error);
  }
  return h("div", { class: "field" }, label, input, help, error);
}

/** "2026-11-23 10:15" in the browser's time zone, from ISO text or unix seconds. */
export function formatTime(value) {
  if (value === null || value === undefined || value === "") return "–";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** A ``datetime-local`` input's value (local time) as ISO 8601 UTC, or "" when empty. */
export function localToIso(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toISOString();
}

/** A table with a caption (for screen readers) and column headers. */
export function dataTable(caption, columns) {
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "admin-table" },
    h("caption", { text: caption }),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c })))),
    tbody,
  );
  // A table wider than a phone scrolls on its own: keyboard users can reach it too.
  const wrap = h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption }, table);
  return { el: wrap, tbody };
}
