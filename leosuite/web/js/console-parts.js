// Pieces of the console view (console.js) that need none of its state: push bytes,
// notices, and the per-server command history.

import { h, replace } from "./ui.js";

const HISTORY_MAX = 100;

export function base64Bytes(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

/** One console push's bytes (``utf-8`` text or ``base64``) as bytes. */
export function bytesOf(data, encoding) {
  return encoding === "base64" ? base64Bytes(data) : new TextEncoder().encode(data);
}

export function notice(kind, text, onDismiss) {
  const box = h("div", { class: `notice notice-${kind} console-notice`, role: "status" });
  replace(
    box,
    h("span", { class: "console-notice-text", text }),
    onDismiss
      ? h("button", {
          type: "button",
          class: "btn btn-small",
          text: "Dismiss",
          on: { click: () => onDismiss(box) },
        })
      : null,
  );
  return box;
}

/** Command history of one server, kept in sessionStorage. */
export function commandHistory(server) {
  const key = `leosuite.console.history.${server}`;
  let items = [];
  try {
    items = JSON.parse(sessionStorage.getItem(key) || "[]");
    if (!Array.isArray(items)) items = [];
  } catch {
    items = [];
  }
  return {
    items,
    add(command) {
      if (items[items.length - 1] !== command) items.push(command);
      while (items.length > HISTORY_MAX) items.shift();
      try {
        sessionStorage.setItem(key, JSON.stringify(items));
      } catch {
        // storage full or disabled: the history lives in this page only
      }
    },
  };
}
