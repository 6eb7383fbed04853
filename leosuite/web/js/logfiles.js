// The Logs tab: a server's own log files (those its type declares), read-only, one at a
// time in a <pre> that keeps the last MAX_CHARS characters, followed live through
// logfile.subscribe (resumed from the last byte shown after a reconnect).

import { bytesOf } from "./console-parts.js";
import { errorText, h, replace } from "./ui.js";

/** Characters the view keeps at most: older text is dropped from its top. */
export const MAX_CHARS = 256 * 1024;
/** Bytes of a file shown when it is opened: its last 64 KiB. */
const BACKLOG = 64 * 1024;

export function mountLogFiles(panel, app, name) {
  let closed = false;
  let sub = null;
  let file = null;
  let nextIndex = 0;
  let decoder = new TextDecoder("utf-8");
  const status = h("p", { class: "muted", role: "status", text: "Loading…" });
  const select = h("select", { id: "logfile-select", name: "file" });
  const picker = h("div", { class: "field logfile-picker", hidden: true }, h("label", { for: "logfile-select", text: "Log file" }), select);
  const view = h("pre", {
    class: "logfile-view",
    tabindex: "0",
    role: "log",
    "aria-label": `${name}'s log file`,
    hidden: true,
  });
  replace(panel, h("div", { class: "stack" }, picker, status, view));

  function append(text) {
    const atBottom = view.scrollTop + view.clientHeight >= view.scrollHeight - 4;
    view.textContent = (view.textContent + text).slice(-MAX_CHARS);
    if (atBottom) view.scrollTop = view.scrollHeight;
  }

  const mine = (c) => !closed && c?.server === name && c?.file === file;
  const offs = [
    app.conn.onPush("logfile_output", (c) => {
      if (!mine(c) || c.nextReadIndex <= nextIndex) return;
      const bytes = bytesOf(c.data, c.encoding).subarray(Math.max(0, nextIndex - c.readIndex));
      nextIndex = c.nextReadIndex;
      append(decoder.decode(bytes, { stream: true }));
    }),
    app.conn.onPush("logfile_overrun", (c) => {
      if (!mine(c)) return;
      nextIndex = Math.max(nextIndex, c.readIndex);
      append(`\n[${c.skipped} bytes no longer readable]\n`);
    }),
    app.conn.onPush("logfile_closed", (c) => {
      if (!mine(c)) return;
      const why = c.reason === "refused" ? `refused: ${c.message}` : c.reason === "revoked" ? "your console right was taken away" : "the server is gone";
      status.textContent = `This log file is not followed any more (${why}).`;
    }),
  ];

  async function open(entry) {
    if (sub) await sub.cancel();
    if (closed) return;
    file = entry.file;
    decoder = new TextDecoder("utf-8");
    view.textContent = "";
    view.hidden = false;
    if (entry.error) {
      status.textContent = `${entry.file} may not be read: ${entry.error}`;
      return;
    }
    nextIndex = Math.max(entry.oldestIndex, entry.readIndex - BACKLOG);
    status.textContent = entry.exists ? `${entry.file}, followed live.` : `${entry.file} does not exist yet: waiting for it.`;
    const chosen = file;
    sub = app.conn.subscribe({
      type: "logfile.subscribe",
      content: () => ({ server: name, file: chosen, from: nextIndex }),
      unsubscribe: "logfile.unsubscribe",
      unsubscribeContent: { server: name, file: chosen },
    });
    try {
      await sub.ready;
    } catch (err) {
      if (!closed && file === chosen) status.textContent = `${chosen} is not available: ${errorText(err)}`;
    }
  }

  async function start() {
    try {
      const listing = await app.conn.call("logfile.list", { server: name });
      if (closed) return;
      if (!listing.files.length) {
        status.textContent = "This server's type declares no log files of its own (only its console).";
        return;
      }
      for (const entry of listing.files) select.append(h("option", { value: entry.file, text: entry.file }));
      picker.hidden = false;
      select.addEventListener("change", () => open(listing.files.find((e) => e.file === select.value)));
      await open(listing.files[0]);
    } catch (err) {
      if (!closed) status.textContent = `The log files are not available: ${errorText(err)}`;
    }
  }
  start();

  return () => {
    closed = true;
    for (const off of offs) off();
    if (sub) sub.cancel();
  };
}
