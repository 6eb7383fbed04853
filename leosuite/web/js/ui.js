// Small DOM helpers shared by every view. No framework: views build DOM with h().

/**
 * h("button", {class: "btn", type: "button", on: {click: fn}, dataset: {x: 1}}, "Start")
 * Props: class, text, html is NOT supported (no innerHTML anywhere: console and chat
 * text come from servers and users). Other props become attributes (true = present,
 * false/null/undefined = absent). Children: strings, nodes, arrays, null (skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value" && "value" in el) el.value = value;
    else if (key === "checked" && "checked" in el) el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace everything inside ``el``. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A short message at the bottom of the page; errors stay until dismissed or 10 s. */
export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const item = h(
    "div",
    { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", { text: message }),
    h("button", {
      type: "button",
      class: "toast-close",
      "aria-label": "Dismiss",
      text: "×",
      on: { click: () => item.remove() },
    }),
  );
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 10000 : 4000);
  return item;
}

/** A modal yes/no question on a <dialog>; resolves true when confirmed. */
export function confirmDialog(message, { confirmLabel = "OK", danger = false } = {}) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-label": message },
      h("p", { text: message }),
      h(
        "form",
        { method: "dialog", class: "dialog-actions" },
        h("button", { value: "cancel", class: "btn", text: "Cancel" }),
        h("button", {
          value: "ok",
          class: danger ? "btn btn-danger" : "btn btn-primary",
          text: confirmLabel,
          "data-confirm": true,
        }),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    dialog.querySelector("[data-confirm]").focus();
  });
}

export function formatBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** The tab's title: ``setTitle("Servers")`` shows "Servers — leosuite"; no text, "leosuite". */
export function setTitle(text) {
  document.title = text ? `${text} — leosuite` : "leosuite";
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${hh}h`;
  if (hh) return `${hh}h ${mm}m`;
  if (mm) return `${mm}m ${s % 60}s`;
  return `${s % 60}s`;
}

/**
 * ``import(url)`` (relative to /ui/js/) that tries once more under another URL: a browser
 * remembers, for the page's life, that a module's fetch failed (the daemon was down
 * when a view was first opened), and would refuse that view until a reload.
 */
export async function importFresh(url) {
  try {
    return await import(url);
  } catch (err) {
    try {
      return await import(`${url}?retry=${Date.now()}`);
    } catch {
      throw err;
    }
  }
}

/** Give ``el`` the focus back if the page lost it: a focused button that gets disabled
 * (while its action runs) drops the focus on the body, and a keyboard user with it. */
export function keepFocus(el) {
  if (el.isConnected && (!document.activeElement || document.activeElement === document.body)) el.focus();
}

/** The message to show for a failed call: the API's own words when it gave some. */
export function errorText(err) {
  if (err && err.content && typeof err.content === "object") {
    if (err.content.message) return err.content.message;
    if (Array.isArray(err.content.errors) && err.content.errors.length) {
      return err.content.errors.map((e) => e.detail).join("; ");
    }
  }
  return (err && err.message) || String(err);
}
