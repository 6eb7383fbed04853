// #/new (the create form, generated from server.create_options) and the settings form
// of a server (from server.settings), with the API's validation errors shown next to
// the field they name.

import { STATUS } from "./api.js";
import { errorText, h, keepFocus, replace, toast } from "./ui.js";

/** Variables every type has (docs/server-types.md); shown apart from the type's own. */
const COMMON = ["user", "autostart", "restart", "stop_timeout", "max_restarts"];
const NAME_HELP = "1–64 characters: a–z, 0–9, _ and -, not starting with -.";

let uid = 0;

/** A variable's human name: the type's ``label``, else its name made readable. */
function labelOf(v) {
  if (v.label) return v.label;
  const text = v.name.replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * One labelled input for a variable ``v`` ({name, label?, type, required, readonly,
 * description?, choices?, min?, max?}). Returns {el, input, name, label, get(),
 * error(msg), clear()}; get() is the typed value, undefined for an empty optional
 * number, or throws a message for input that is not a number.
 */
function field(v, value, { disabled = false, note = "" } = {}) {
  const id = `f${++uid}-${v.name}`;
  const helpId = `${id}-help`;
  const errorId = `${id}-error`;
  let input;
  const numeric = ["int", "number", "port"].includes(v.type);
  if (v.type === "bool") {
    input = h("input", { type: "checkbox", id, checked: Boolean(value) });
  } else if (v.type === "choice" && Array.isArray(v.choices) && v.choices.length) {
    input = h(
      "select",
      { id },
      v.choices.map((c) => h("option", { value: c, text: c, selected: c === value })),
    );
    input.value = value ?? "";
  } else if (numeric) {
    const port = v.type === "port";
    input = h("input", {
      type: "number",
      id,
      inputmode: v.type === "number" ? "decimal" : "numeric",
      step: v.type === "number" ? "any" : "1",
      min: port ? 1 : v.min,
      max: port ? 65535 : v.max,
      value: value === null || value === undefined ? "" : String(value),
    });
  } else {
    input = h("input", { type: "text", id, value: value ?? "", autocomplete: "off", spellcheck: "false" });
  }
  input.name = v.name;
  input.dataset.var = v.name;
  if (v.required) input.setAttribute("aria-required", "true");
  if (disabled) input.disabled = true;
  const helpText = [v.description, rangeText(v)].filter(Boolean).join(" ");
  const help =
    helpText || note
      ? h("span", { class: "help", id: helpId }, helpText, note ? h("span", { class: "help-note", text: note }) : null)
      : null;
  const err = h("span", { class: "field-error", id: errorId, hidden: true });
  const label = h("label", { for: id, class: v.required ? "required" : null, text: labelOf(v) });
  const describe = (withError) =>
    input.setAttribute("aria-describedby", [withError ? errorId : null, help ? helpId : null].filter(Boolean).join(" "));
  if (help) describe(false);
  // Free text (a command line, a world name) gets the whole width of the form.
  const wide = v.type === "string" && !v.choices?.length;
  const el =
    v.type === "bool"
      ? h("div", { class: "field field-check" }, h("div", { class: "check-row" }, input, label), help, err)
      : h("div", { class: wide ? "field field-wide" : "field" }, label, input, help, err);
  el.dataset.field = v.name;
  return {
    el,
    input,
    name: v.name,
    label: labelOf(v),
    readonly: disabled,
    get() {
      if (v.type === "bool") return input.checked;
      if (!numeric) return input.value;
      if (input.validity.badInput) throw new Error("Enter a number.");
      if (input.value.trim() === "") return undefined;
      return Number(input.value);
    },
    error(message) {
      err.textContent = message.charAt(0).toUpperCase() + message.slice(1);
      err.hidden = false;
      input.setAttribute("aria-invalid", "true");
      describe(true);
      const details = el.closest("details");
      if (details) details.open = true;
    },
    clear() {
      err.hidden = true;
      err.textContent = "";
      input.removeAttribute("aria-invalid");
      describe(false);
    },
  };
}

function rangeText(v) {
  if (v.type === "port") return "(1–65535)";
  const has = (x) => typeof x === "number";
  if (has(v.min) && has(v.max)) return `(${v.min}–${v.max})`;
  if (has(v.min)) return `(at least ${v.min})`;
  if (has(v.max)) return `(at most ${v.max})`;
  return "";
}

/** Put an API error next to its field (or in ``notice``); focus that field. */
function showError(err, widgets, notice, prefix) {
  let name = err.field || "";
  if (name.startsWith("settings.")) name = name.slice("settings.".length);
  // "server name not available" names no field, but it is the name's fault.
  if (!name && err.code === STATUS.GENERAL_FAILURE && /name not available/.test(err.message)) name = "server";
  const widget = widgets.get(name);
  const text = errorText(err);
  notice.hidden = false;
  notice.className = "notice notice-error";
  notice.setAttribute("role", "alert");
  notice.textContent = `${prefix}: ${text}`;
  if (widget) {
    widget.error(text);
    widget.input.focus();
  }
}

function clearAll(widgets, notice) {
  for (const w of widgets.values()) w.clear();
  notice.hidden = true;
  notice.textContent = "";
}

/** Read the widgets; a widget whose input is not a number gets its error. */
function readValues(widgets, skip) {
  const values = {};
  let bad = null;
  for (const w of widgets.values()) {
    if (skip.includes(w.name) || w.readonly) continue;
    try {
      const value = w.get();
      if (value !== undefined) values[w.name] = value;
    } catch (e) {
      w.error(e.message);
      bad = bad || w;
    }
  }
  if (bad) bad.input.focus();
  return bad ? null : values;
}

/** A folded group of fields: ``summary`` heads it; nothing when ``list`` is empty. */
function folded(summary, cls, list, add) {
  if (!list.length) return null;
  return h("details", { class: `form-more ${cls}` }, h("summary", { text: summary }), h("div", { class: "form-grid" }, list.map(add)));
}

/** The type's own settings in sight; the common ones and the advanced ones folded. */
function groupFields(vars, widgets, make) {
  const own = vars.filter((v) => !COMMON.includes(v.name) && !v.advanced);
  const common = vars.filter((v) => COMMON.includes(v.name) && !v.advanced);
  const advanced = vars.filter((v) => v.advanced);
  const add = (v) => {
    const w = make(v);
    widgets.set(v.name, w);
    return w.el;
  };
  return [
    own.length ? h("div", { class: "form-grid" }, own.map(add)) : null,
    folded("Supervision: autostart and restart policy", "form-supervision", common, add),
    folded("Advanced settings", "form-advanced", advanced, add),
  ];
}

// ---------------------------------------------------------------- create

export async function mountCreate(root, app) {
  const title = h("h1", { id: "create-title", text: "New server" });
  const back = h("a", { class: "back-link", href: "#/servers", text: "← All servers" });
  const show = (...body) => replace(root, h("section", { class: "stack form-page" }, back, title, body));
  show(h("p", { class: "muted", text: "Loading…" }));
  let types;
  try {
    types = (await app.conn.call("server.create_options", {}))?.types || [];
  } catch (err) {
    show(h("p", { class: "notice notice-error", text: errorText(err) }));
    return null;
  }
  if (!types.length) {
    show(h("p", { class: "notice", text: "Your account may not create servers: that needs the HOST or ADMIN flag." }));
    return null;
  }

  let disposed = false;
  let loadToken = 0;
  const widgets = new Map();
  const notice = h("p", { class: "notice", hidden: true });
  const nameField = field({ name: "server", label: "Name", type: "string", required: true, description: NAME_HELP }, "");
  Object.assign(nameField.input, { maxLength: 64, autocapitalize: "none" });
  nameField.input.setAttribute("pattern", "[a-z0-9_][a-z0-9_\\-]{0,63}");
  const typeError = h("span", { class: "field-error", id: "type-error", hidden: true });
  const typeWidget = {
    name: "type",
    error(m) {
      typeError.textContent = m;
      typeError.hidden = false;
    },
    clear() {
      typeError.hidden = true;
    },
  };
  const radios = types.map((t, i) => {
    const id = `type-${i}`;
    const input = h("input", {
      type: "radio",
      name: "type",
      id,
      value: t.type,
      "aria-labelledby": `${id}-name`,
      "aria-describedby": `${id}-desc`,
    });
    input.addEventListener("change", () => chooseType(t.type));
    return h(
      "div",
      { class: "type-option" },
      input,
      h(
        "label",
        { for: id },
        h("span", { class: "type-name mono", id: `${id}-name`, text: t.type }),
        h("span", { class: "type-desc muted", id: `${id}-desc`, text: t.description || "" }),
      ),
    );
  });
  typeWidget.input = radios[0].querySelector("input");
  const picker = h(
    "fieldset",
    { class: "type-picker", "aria-describedby": "type-error" },
    h("legend", { class: "required", text: "Type" }),
    radios,
    typeError,
  );
  const vars = h("div", { class: "vars stack" }, h("p", { class: "muted", text: "Choose a type to see its settings." }));
  const submit = h("button", { type: "submit", class: "btn btn-primary", text: "Create server" });
  const form = h(
    "form",
    { class: "card stack create-form", novalidate: true, "aria-labelledby": "create-title" },
    nameField.el,
    picker,
    vars,
    notice,
    h("div", { class: "row" }, submit, h("a", { class: "btn", href: "#/servers", text: "Cancel" })),
  );
  show(form);

  function resetWidgets() {
    widgets.clear();
    widgets.set("server", nameField);
    widgets.set("type", typeWidget);
  }
  resetWidgets();

  async function chooseType(type) {
    const token = ++loadToken;
    typeWidget.clear();
    replace(vars, h("p", { class: "muted", text: `Loading the settings of ${type}…` }));
    try {
      const options = await app.conn.call("server.create_options", { type });
      if (disposed || token !== loadToken) return;
      resetWidgets();
      const list = options?.variables || [];
      replace(
        vars,
        h("h2", { text: `Settings of ${type}` }),
        groupFields(list, widgets, (v) =>
          field(v, v.default, { note: v.readonly ? "Cannot be changed once the server is created." : "" }),
        ),
      );
    } catch (err) {
      if (token === loadToken) replace(vars, h("p", { class: "notice notice-error", text: errorText(err) }));
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearAll(widgets, notice);
    const type = form.querySelector("input[name=type]:checked")?.value;
    if (!type) {
      typeWidget.error("Choose a type.");
      typeWidget.input.focus();
      return;
    }
    const settings = readValues(widgets, ["server", "type"]);
    if (!settings) return;
    const server = nameField.input.value.trim();
    submit.disabled = true;
    submit.textContent = "Creating…";
    try {
      await app.conn.call("server.create", { server, type, settings });
      toast(`Server ${server} created.`, "ok");
      app.navigate(`#/servers/${server}`);
    } catch (err) {
      if (!disposed) showError(err, widgets, notice, "The server was not created");
    } finally {
      submit.disabled = false;
      submit.textContent = "Create server";
      if (!disposed) keepFocus(submit);
    }
  });

  if (types.length === 1) {
    typeWidget.input.checked = true;
    chooseType(types[0].type);
  }
  return () => {
    disposed = true;
  };
}

// ---------------------------------------------------------------- settings

export async function mountSettings(el, app, name) {
  replace(el, h("p", { class: "muted", text: "Loading settings…" }));
  const [current, status] = await Promise.all([
    app.conn.call("server.settings", { server: name }),
    app.conn.call("server.status", { server: name }),
  ]);
  // Descriptions, choices and ranges come from the type (when this account may see it).
  let meta = {};
  try {
    const options = await app.conn.call("server.create_options", { type: status.type });
    meta = Object.fromEntries((options?.variables || []).map((v) => [v.name, v]));
  } catch {
    meta = {};
  }
  let disposed = false;
  const widgets = new Map();
  const baseline = new Map((current || []).map((s) => [s.name, s.value]));
  const notice = h("p", { class: "notice", hidden: true });
  const save = h("button", { type: "submit", class: "btn btn-primary", text: "Save settings" });
  const vars = (current || []).map((s) => ({ ...(meta[s.name] || {}), ...s }));
  const form = h(
    "form",
    { class: "card stack settings-form", novalidate: true, "aria-labelledby": "settings-title" },
    h("h2", { id: "settings-title", text: "Settings" }),
    h("p", { class: "muted", text: "Changes apply at the next start of the server." }),
    groupFields(vars, widgets, (v) =>
      field(v, v.value, { disabled: v.readonly, note: v.readonly ? "Set when the server was created; read-only." : "" }),
    ),
    notice,
    h("div", { class: "row" }, save),
  );
  replace(el, form);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearAll(widgets, notice);
    const values = readValues(widgets, []);
    if (!values) return;
    const empty = [...widgets.values()].find((w) => !w.readonly && !(w.name in values));
    if (empty) {
      empty.error("Enter a value.");
      empty.input.focus();
      return;
    }
    const set = {};
    for (const [key, value] of Object.entries(values)) if (value !== baseline.get(key)) set[key] = value;
    if (!Object.keys(set).length) {
      showNote("Nothing changed.", "notice");
      return;
    }
    save.disabled = true;
    save.textContent = "Saving…";
    try {
      const answer = await app.conn.call("server.settings", { server: name, set });
      for (const s of answer || []) baseline.set(s.name, s.value);
      const labels = Object.keys(set).map((key) => widgets.get(key)?.label || key);
      showNote(`Saved (${labels.join(", ")}). Changes apply at the next start.`, "notice notice-ok");
    } catch (err) {
      if (!disposed) showError(err, widgets, notice, "Not saved");
    } finally {
      save.disabled = false;
      save.textContent = "Save settings";
      if (!disposed) keepFocus(save);
    }
  });

  function showNote(text, cls) {
    notice.hidden = false;
    notice.className = cls;
    notice.setAttribute("role", "status");
    notice.textContent = text;
  }

  return () => {
    disposed = true;
  };
}
