// Pieces of the console view (console.js) that need none of its state: push bytes,
// notices, and the per-server command history with its arrow keys.

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

/** A line of the dashboard's own in the terminal (yellow, on a line of its own). */
export function marker(text) {
  return `\x1b[0m\n\x1b[33m[dashboard] ${text}\x1b[0m\n`;
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

/** ArrowUp/ArrowDown in ``input`` walk the command history of ``server`` (the draft
 * being typed comes back at its end); ``add(command)`` records a sent command. */
export function historyKeys(input, server) {
  const history = commandHistory(server);
  let at = history.items.length;
  let draft = "";
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowUp") {
      if (at === 0) return;
      if (at === history.items.length) draft = input.value;
      at -= 1;
      input.value = history.items[at];
    } else if (event.key === "ArrowDown") {
      if (at >= history.items.length) return;
      at += 1;
      input.value = at === history.items.length ? draft : history.items[at];
    } else return;
    event.preventDefault();
    input.setSelectionRange(input.value.length, input.value.length);
  });
  return {
    add(command) {
      history.add(command);
      at = history.items.length;
      draft = "";
    },
  };
}
