// One WebSocket that comes back by itself: after a loss it tries again with backoff
// (1 s, 2 s, 4 s … 30 s), "retry now" tries at once, and once stopped it stays stopped.
// The protocol on top (the WebSocket API, the chat) says when a connection counts as
// up (logged in), and may hold the retries (a refused login would be refused again).

export const BACKOFF_MAX = 30;

/** Seconds to wait before try number ``attempt`` (1-based) after a loss. */
export function backoffDelay(attempt) {
  return Math.min(BACKOFF_MAX, 2 ** (attempt - 1));
}

/**
 * A reconnecting WebSocket to ``url``, offering the subprotocols ``protocols`` (if any).
 *
 * Hooks (all optional), called for the current socket only:
 *  - ``onOpen(ws)``: the socket is open; the protocol logs in, then calls ``up()``.
 *  - ``onMessage(event)``: a message arrived.
 *  - ``onClose(event, wasUp)``: the socket closed (``event`` is null when it could not
 *    even be created); the hook may call ``hold()`` or ``stop()`` before the retry.
 *
 * Event ``state`` (``detail = {state, delay?, reason?}``), state being:
 *  - "connecting": the first try (or a try after ``hold()``, when nothing failed yet);
 *  - "open": the protocol called ``up()``;
 *  - "reconnecting": a try after a loss; with ``delay`` (and the loss's ``reason``) it
 *    is waiting that many seconds before the next one;
 *  - "held": lost and not retrying by itself (``reason`` from ``hold(reason)``) until
 *    ``retryNow()``;
 *  - "closed": stopped for good by ``stop()``.
 */
export class ReconnectingSocket extends EventTarget {
  constructor(url, { onOpen = null, onMessage = null, onClose = null, protocols = [] } = {}) {
    super();
    this.url = url;
    this.protocols = protocols;
    this.state = "idle";
    this.attempt = 0;
    this._hooks = { onOpen, onMessage, onClose };
    this._ws = null;
    this._timer = null;
    this._held = null;
    this._stopped = false;
  }

  /** The open (or opening) WebSocket, or null between tries. */
  get ws() {
    return this._ws;
  }

  /** True once ``stop()`` was called: nothing is tried again. */
  get stopped() {
    return this._stopped;
  }

  /** True while the socket is open (whether or not the protocol is up). */
  get writable() {
    return this._ws !== null && this._ws.readyState === WebSocket.OPEN;
  }

  _setState(state, extra = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...extra } }));
  }

  start() {
    this._connect();
  }

  /** The protocol is up (logged in): the next loss waits 1 s again. */
  up() {
    if (this._stopped) return;
    this.attempt = 0;
    this._held = null;
    this._setState("open");
  }

  /** Do not retry by itself after this loss (or the next one): wait for retryNow(). */
  hold(reason = "") {
    if (this._stopped) return;
    this._held = reason;
    if (this._ws) return;
    clearTimeout(this._timer);
    this._setState("held", { reason });
  }

  /** Try now instead of waiting (the "Retry now" button); also ends a hold. */
  retryNow() {
    if (this._stopped || this.state === "open") return;
    this._held = null;
    clearTimeout(this._timer);
    if (this._ws) return; // a try is under way
    this._connect();
  }

  /** Stop for good: close the socket (with ``code``, ``reason``) and never try again. */
  stop(code = 1000, reason = "bye") {
    if (this._stopped) return;
    this._stopped = true;
    clearTimeout(this._timer);
    const ws = this._ws;
    this._ws = null;
    if (ws) ws.close(code, reason);
    this._setState("closed");
  }

  _connect() {
    if (this._stopped) return;
    this._setState(this.attempt === 0 ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new WebSocket(this.url, this.protocols);
    } catch (err) {
      this._lost(null, `cannot connect (${err.message})`);
      return;
    }
    this._ws = ws;
    ws.addEventListener("open", () => {
      if (ws === this._ws) this._hooks.onOpen?.(ws);
    });
    ws.addEventListener("message", (event) => {
      if (ws === this._ws) this._hooks.onMessage?.(event);
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this._ws) return;
      this._ws = null;
      this._lost(event, event.reason || `closed (${event.code})`);
    });
  }

  _lost(event, reason) {
    const wasUp = this.state === "open";
    this._hooks.onClose?.(event, wasUp);
    if (this._stopped) return;
    if (this._held !== null) {
      this._setState("held", { reason: this._held });
      return;
    }
    this.attempt += 1;
    const delay = backoffDelay(this.attempt);
    this._setState("reconnecting", { delay, reason });
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._connect(), delay * 1000);
  }
}
