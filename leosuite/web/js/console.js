// A server's live console: an xterm.js view of the console byte stream over
// console.subscribe, older output paged in with server.log, and a command line with
// history. mountConsole(el, app, server) -> cleanup function.

import { Terminal } from "/ui/vendor/xterm/xterm.mjs";
import { FitAddon } from "/ui/vendor/addon-fit/addon-fit.mjs";
import { STATUS } from "./api.js";
import { consoleFeed } from "./console-feed.js";
import { base64Bytes, historyKeys, marker, notice } from "./console-parts.js";
import { localSource, remoteSource } from "./console-source.js";
import { errorText, formatBytes, h, keepFocus, replace } from "./ui.js";

const BACKLOG = 64 * 1024; // bytes shown on first mount
const PAGE = 64 * 1024; // bytes per "load older" page
const KEEP_CHARS = 2_000_000; // text kept to rebuild the view (older output is re-read)
const SCROLLBACK = 50_000;
const THEME = { background: "#101418", foreground: "#d8dee9", cursor: "#101418" };

export function mountConsole(el, app, server) {
  let closed = false;
  let term = null;
  let fit = null;
  let following = true;
  let lastBaseY = 0;
  let rebuilding = false;
  let loadingOlder = false;
  let startReached = false;
  let nextIndex = null; // the next byte expected from the subscription
  let decoder = new TextDecoder("utf-8");
  let chunks = []; // {start, end, text}: what the terminal shows, in order
  let keptChars = 0;
  let skippedTotal = 0;
  let overrunBox = null;
  let sub = null;
  let source = localSource(app); // another node's, once the status says it runs there
  const disposers = [];

  const follow = h("button", {
    type: "button",
    class: "btn btn-small console-follow",
    "aria-pressed": "true",
    text: "Following",
    title: "Scroll to new output as it arrives",
  });
  const older = h("button", { type: "button", class: "btn btn-small console-older", text: "Load older output" });
  const olderState = h("span", { class: "muted console-older-state", role: "status" });
  const notices = h("div", { class: "console-notices" });
  const nodeState = h("span", { class: "muted console-node", role: "status" });
  const screen = h("div", { class: "console-screen", "aria-label": `Console of ${server}`, role: "region" });
  const input = h("input", {
    id: `console-cmd-${server}`,
    class: "console-input",
    type: "text",
    autocomplete: "off",
    autocapitalize: "off",
    spellcheck: "false",
    placeholder: `A command for ${server}, then Enter`,
    enterkeyhint: "send",
  });
  const cmdError = h("span", { class: "console-cmd-error", role: "alert" });
  const send = h("button", { type: "submit", class: "btn btn-primary", text: "Send" });
  const form = h(
    "form",
    { class: "console-cmd", novalidate: true },
    h("label", { for: input.id, class: "console-cmd-label", text: "Command" }),
    h("div", { class: "console-cmd-row" }, input, send),
    cmdError,
  );
  replace(
    el,
    h(
      "section",
      { class: "console", "aria-label": "Console" },
      h(
        "div",
        { class: "console-bar" },
        older,
        olderState,
        h("span", { class: "console-spacer" }),
        nodeState,
        follow,
      ),
      notices,
      screen,
      form,
    ),
  );

  // -- the terminal -------------------------------------------------------------------

  function fitNow() {
    if (!fit || closed || screen.clientWidth === 0 || screen.clientHeight === 0) return;
    try {
      fit.fit();
    } catch {
      // not laid out yet
    }
  }

  function newTerminal() {
    if (term) term.dispose();
    term = new Terminal({
      convertEol: true,
      disableStdin: true,
      cursorBlink: false,
      cursorInactiveStyle: "none",
      scrollback: SCROLLBACK,
      fontSize: window.matchMedia("(max-width: 600px)").matches ? 12 : 13,
      fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace",
      theme: THEME,
    });
    fit = new FitAddon();
    term.loadAddon(fit);
    term.open(screen);
    term.attachCustomKeyEventHandler(leaveKeys);
    term.onScroll(onScroll);
    lastBaseY = 0;
    fitNow();
  }

  /** Tab and Shift+Tab move the focus on and Esc goes to the command line: the
   * terminal takes no input, so it must never keep a keyboard user in. */
  function leaveKeys(event) {
    if (event.key === "Tab") return false;
    if (event.key !== "Escape") return true;
    if (event.type === "keydown") (input.disabled ? follow : input).focus();
    return false;
  }

  function setFollowing(on) {
    following = on;
    follow.setAttribute("aria-pressed", String(on));
    follow.textContent = on ? "Following" : "Follow";
    if (on && term) term.scrollToBottom();
  }

  function onScroll() {
    if (rebuilding) return;
    const buf = term.buffer.active;
    // A scroll with an unchanged buffer end is the user's (output moves baseY).
    if (buf.baseY !== lastBaseY) return;
    if (buf.viewportY < buf.baseY) {
      if (following) setFollowing(false);
      if (buf.viewportY === 0 && !startReached && !loadingOlder) loadOlder();
    } else if (!following) setFollowing(true);
  }

  /** Write text to the terminal, keeping the view where the user wants it; ``done``
   * is called once the terminal has taken it. */
  function show(text, done) {
    if (!text) {
      if (done) done();
      return;
    }
    const keptY = term.buffer.active.viewportY;
    const wasFollowing = following;
    term.write(text, () => {
      if (done) done();
      if (closed) return;
      const buf = term.buffer.active;
      if (following) term.scrollToBottom();
      else if (!wasFollowing && buf.viewportY !== keptY) term.scrollToLine(keptY);
      lastBaseY = buf.baseY;
    });
  }

  function keep(start, end, text, done) {
    chunks.push({ start, end, text });
    keptChars += text.length;
    while (keptChars > KEEP_CHARS && chunks.length > 1) {
      keptChars -= chunks.shift().text.length;
      startReached = false;
    }
    updateOlder();
    // While a rebuild is under way its writes are queued already: this one follows them.
    if (rebuilding) term.write(text, done);
    else show(text, done);
  }

  /** Which node the console is read from, and whether that connection is up. */
  function showRemoteState({ state, delay }) {
    const node = source.node;
    if (state === "open") nodeState.textContent = `Read from node ${node}`;
    else if (state === "reconnecting" && delay) {
      nodeState.textContent = `Connection to node ${node} lost: trying again in ${delay} s`;
    } else if (state === "closed") nodeState.textContent = `Not connected to node ${node}`;
    else nodeState.textContent = `Connecting to node ${node}…`;
  }

  function firstIndex() {
    return chunks.length ? chunks[0].start : nextIndex;
  }

  // -- live output --------------------------------------------------------------------

  // Pushes go through the feed (console-feed.js), which paces and bounds the writes.
  const feed = consoleFeed({
    write(start, end, bytes, done) {
      keep(start, end, decoder.decode(bytes, { stream: true }), done);
    },
    skip: showSkip,
    visible: () => !document.hidden && screen.offsetParent !== null,
  });

  function onOutput(content) {
    if (closed || content?.server !== server || nextIndex === null) return;
    // Only the bytes that continue what is shown: a push that ends before nextIndex was
    // shown already (a resubscribe), one that starts after it is a leftover of an
    // earlier subscription of this connection (gaps are announced by console_overrun,
    // which moves nextIndex first); an overlap is cut.
    if (content.nextReadIndex <= nextIndex || content.readIndex > nextIndex) return;
    const start = nextIndex;
    nextIndex = content.nextReadIndex;
    feed.output(start, nextIndex, content.data, content.encoding, start - content.readIndex);
  }

  function onOverrun(content) {
    if (closed || content?.server !== server) return;
    const at = Number(content.readIndex) || 0;
    feed.overrun(Number(content.skipped) || 0, at);
    nextIndex = Math.max(nextIndex ?? 0, at);
  }

  /** Output skipped (by the daemon or by the feed): a line in the terminal and one
   * notice over the screen's corner, which never moves the console. */
  function showSkip(skipped, at) {
    skippedTotal += skipped;
    const flushed = decoder.decode();
    decoder = new TextDecoder("utf-8");
    const line = `${formatBytes(skipped)} skipped — the console was too fast for this page`;
    keep(at, at, flushed + marker(line));
    const text = `${formatBytes(skippedTotal)} skipped — the console was too fast for this page.`;
    if (!overrunBox) {
      overrunBox = notice("warn", text, (b) => {
        b.remove();
        overrunBox = null;
        skippedTotal = 0;
      });
      overrunBox.classList.add("console-overrun");
      screen.append(overrunBox);
    } else overrunBox.querySelector(".console-notice-text").textContent = text;
  }

  function onClosed(content) {
    if (closed || content?.server !== server) return;
    notices.append(notice("error", `The server ${server} was destroyed: its console has ended.`, null));
    feed.close();
    keep(nextIndex, nextIndex, marker("the server was destroyed"));
    input.disabled = true;
    send.disabled = true;
  }

  // -- older output -------------------------------------------------------------------

  function updateOlder() {
    const first = firstIndex();
    if (first === 0) {
      older.disabled = true;
      olderState.textContent = "Start of the console log.";
    } else if (startReached) {
      older.disabled = true;
      olderState.textContent = `Start of the kept log: the ${formatBytes(first)} before it are no longer kept.`;
    } else {
      older.disabled = loadingOlder || first === null;
      olderState.textContent = loadingOlder ? "Loading…" : "";
    }
  }

  async function loadOlder() {
    const first = firstIndex();
    if (loadingOlder || !first) return;
    loadingOlder = true;
    updateOlder();
    let failed = "";
    try {
      const want = Math.max(0, first - PAGE);
      const parts = [];
      let start = null;
      let at = want;
      while (at < first) {
        const page = await source.call("server.log", { server, readIndex: at, max: first - at, encoding: "base64" });
        if (closed) return;
        if (start === null) start = page.oldReadIndex;
        const end = Math.min(page.nextReadIndex, first);
        if (end <= page.oldReadIndex) break;
        parts.push(base64Bytes(page.data).subarray(0, end - page.oldReadIndex));
        at = end;
      }
      if (start === null || start >= first) {
        startReached = true;
        return;
      }
      if (start > want) startReached = true;
      const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let offset = 0;
      for (const p of parts) {
        bytes.set(p, offset);
        offset += p.length;
      }
      const text = new TextDecoder("utf-8").decode(bytes);
      chunks.unshift({ start, end: first, text });
      keptChars += text.length;
      rebuild(text);
    } catch (err) {
      failed = `Could not load older output: ${errorText(err)}`;
    } finally {
      loadingOlder = false;
      if (!closed) updateOlder();
      if (failed) olderState.textContent = failed;
    }
  }

  /** xterm cannot prepend: a new terminal gets the older text and then what was shown,
   * scrolled so that the line that was at the top stays there. */
  function rebuild(olderText) {
    const topLine = term.buffer.active.viewportY;
    const wasFollowing = following;
    rebuilding = true;
    newTerminal();
    feed.release();
    let olderRows = 0;
    term.write(olderText, () => {
      const buf = term.buffer.active;
      olderRows = buf.baseY + buf.cursorY;
    });
    term.write(chunks.slice(1).map((c) => c.text).join(""), () => {
      rebuilding = false;
      if (closed) return;
      if (wasFollowing) term.scrollToBottom();
      else term.scrollToLine(olderRows + topLine);
      lastBaseY = term.buffer.active.baseY;
    });
  }

  // -- the command line ---------------------------------------------------------------

  const history = historyKeys(input, server);
  input.addEventListener("input", () => {
    cmdError.textContent = "";
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const command = input.value;
    if (!command.trim()) return;
    history.add(command);
    cmdError.textContent = "";
    send.disabled = true;
    try {
      await app.conn.call("server.cmd", { server, command });
      if (!closed && input.value === command) input.value = "";
      if (!following) setFollowing(true);
    } catch (err) {
      if (closed) return;
      const why = err.code === STATUS.GENERAL_FAILURE ? `Not sent: ${errorText(err)}` : errorText(err);
      cmdError.textContent = why;
    } finally {
      send.disabled = input.disabled;
      if (!closed && !input.disabled) keepFocus(input);
    }
  });

  // -- start ----------------------------------------------------------------------------

  follow.addEventListener("click", () => setFollowing(!following));
  older.addEventListener("click", () => loadOlder());
  function listen(from) {
    disposers.push(from.onPush("console_output", onOutput));
    disposers.push(from.onPush("console_overrun", onOverrun));
    disposers.push(from.onPush("console_closed", onClosed));
  }
  listen(source);

  newTerminal();
  let frame = 0;
  const observer = new ResizeObserver(() => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(fitNow);
    feed.kick(); // shown again after its tab was hidden
  });
  const onVisible = () => feed.kick();
  document.addEventListener("visibilitychange", onVisible);
  observer.observe(screen);
  updateOlder();

  function subscribe() {
    sub = source.subscribe({
      type: "console.subscribe",
      content: () => ({ server, from: nextIndex }),
      unsubscribe: "console.unsubscribe",
      unsubscribeContent: { server },
    });
    return sub.ready;
  }

  async function start() {
    try {
      const status = await app.conn.call("server.status", { server });
      if (closed) return;
      if (status.readIndex == null) {
        // Another node runs it: its console is read there, from its end.
        source = await remoteSource(app, server);
        if (closed) return source.close();
        listen(source);
        disposers.push(source.onState(showRemoteState));
        showRemoteState({ state: source.state() });
      } else nextIndex = Math.max(0, status.readIndex - BACKLOG);
      updateOlder();
      let answer;
      try {
        answer = await subscribe();
      } catch (err) {
        // Still subscribed from a view that went away before its unsubscribe landed.
        if (err.code !== STATUS.INVALID_CALL || closed) throw err;
        await sub.cancel(); // console.unsubscribe {server}, answered
        if (!closed) answer = await subscribe();
      }
      if (closed || nextIndex !== null) return;
      nextIndex = answer.readIndex;
      updateOlder();
      await loadOlder(); // the backlog, as a local console shows it
    } catch (err) {
      if (closed) return;
      notices.append(notice("error", `The console is not available: ${errorText(err)}`, null));
    }
  }
  start();

  return () => {
    closed = true;
    for (const dispose of disposers) dispose();
    feed.close();
    document.removeEventListener("visibilitychange", onVisible);
    observer.disconnect();
    cancelAnimationFrame(frame);
    if (sub) sub.cancel();
    source.close();
    if (term) term.dispose();
  };
}
