// The dashboard's only ways to the daemon: its public HTTP API (login) and one
// WebSocket API connection (seed 000 envelope, docs/api.md) that reconnects with
// backoff and re-authenticates and re-subscribes by itself.

import { ReconnectingSocket } from "./socket.js";

export const STATUS = Object.freeze({
  SUCCESS: 0,
  GENERAL_FAILURE: 1,
  PERMISSION_DENIED: 2,
  RATE_LIMITED: 3,
  MALFORMED: 4,
  INVALID_CALL: 5,
  TIMEOUT: 6,
  SESSION_ABORTED: 7,
  ENTITY_NOT_FOUND: 8,
  DATABASE_ERROR: 9,
  UNKNOWN: 10,
  MODEL_EXCEPTION: 11,
  INVALID_ARGUMENT: 12,
});

/** A failed call. ``code``: the status code (or "disconnected" / "http"), ``content``:
 * the answer's content (``{"field"}`` for INVALID_ARGUMENT, ``{"errors": [...]}`` for
 * MODEL_EXCEPTION), ``field``: the field the API blamed, when it named one. */
export class ApiError extends Error {
  constructor(message, { code, type = "", content = null, httpStatus = 0 } = {}) {
    super(message);
    this.code = code;
    this.type = type;
    this.content = content;
    this.httpStatus = httpStatus;
    this.field = fieldOf(content);
  }
}

function fieldOf(content) {
  if (!content || typeof content !== "object") return null;
  if (typeof content.field === "string") return content.field;
  const pointer = content.errors?.[0]?.source?.pointer;
  return typeof pointer === "string" ? pointer.replace(/^\/content\//, "").replaceAll("/", ".") : null;
}

/** POST/GET to the HTTP API; resolves the JSON answer (or null for 204). */
export async function http(path, body = undefined, token = undefined) {
  const init = { method: body === undefined ? "GET" : "POST", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (token) init.headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(`The daemon cannot be reached (${err.message}).`, { code: "disconnected" });
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message = data?.error_message || `HTTP ${response.status}`;
    throw new ApiError(message, { code: "http", content: data, httpStatus: response.status });
  }
  return data;
}

function uuid() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  // crypto.randomUUID needs a secure context; getRandomValues does not.
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * One WebSocket API connection, logged in with ``token`` (``null``: not logged in, for
 * the calls a console token opens on the node that runs a server).
 *
 * Events (``addEventListener``):
 *  - ``state``: ``detail = {state, delay?}``; state is "connecting", "open",
 *    "reconnecting" (then ``delay`` = seconds until the next try) or "closed".
 *  - ``session_closed``: ``detail = {reason}``: the token ended (expired, logged out
 *    elsewhere, account locked); the connection stops and does not reconnect.
 *
 * ``call(type, content)`` resolves the answer's content or rejects an ApiError.
 * ``onPush(type, fn)`` calls ``fn(content)`` for every push of that type; returns an
 * unsubscribe function.
 * ``subscribe({type, content, unsubscribe, unsubscribeContent})`` sends ``type`` now and
 * again after every reconnect (``content`` may be a function, evaluated each time, e.g.
 * to resume a console from the last readIndex); ``cancel()`` sends ``unsubscribe`` with
 * ``unsubscribeContent`` (default: ``content``) and resolves once it is answered.
 * Returns ``{ready: Promise, cancel()}``.
 * ``reconnectNow()`` tries again at once; ``close()`` stops for good.
 */
export class Connection extends EventTarget {
  constructor(url, token) {
    super();
    this.token = token;
    this.user = null;
    this.socket = new ReconnectingSocket(url, {
      onOpen: (ws) => this._logIn(ws),
      onMessage: (event) => this._onMessage(event),
      onClose: (_event, wasUp) => this._onClose(wasUp),
    });
    this.socket.addEventListener("state", (e) => {
      this.dispatchEvent(new CustomEvent("state", { detail: e.detail }));
    });
    this._pending = new Map();
    this._pushHandlers = new Map();
    this._subscriptions = new Set();
    this._opened = null;
    this._setOpened();
  }

  /** "idle", "connecting", "open" (logged in), "reconnecting" or "closed". */
  get state() {
    return this.socket.state;
  }

  _setOpened() {
    this._opened = new Promise((resolve, reject) => {
      this._resolveOpened = resolve;
      this._rejectOpened = reject;
    });
    // Calls waiting for the login see a rejection when the connection stops for good;
    // nobody waiting is not an error.
    this._opened.catch(() => {});
  }

  /** Connect and log in; resolves once logged in (rejects if the token is refused). */
  start() {
    this.socket.start();
    return this._opened;
  }

  close() {
    this._stop("The connection was closed.", 1000, "bye");
  }

  reconnectNow() {
    this.socket.retryNow();
  }

  async _logIn(ws) {
    if (this.token === null) {
      // A connection for console tokens only: up once open, nothing to log in with.
      this.socket.up();
      this._resolveOpened(null);
      for (const sub of this._subscriptions) this._resubscribe(sub);
      return;
    }
    try {
      const answer = await this._send("authenticate_with_token", { token: this.token });
      if (answer.status !== 0) {
        this._sessionClosed(answer.message || "Your session has ended.");
        return;
      }
      this.user = { id: answer.user_id, username: answer.username };
    } catch (err) {
      if (ws.readyState === WebSocket.OPEN) ws.close();
      return;
    }
    this.socket.up();
    this._resolveOpened(this.user);
    for (const sub of this._subscriptions) this._resubscribe(sub);
  }

  _onMessage(event) {
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    const waiter = this._pending.get(msg.uuid);
    if (waiter) {
      this._pending.delete(msg.uuid);
      if (msg.status_code === STATUS.SUCCESS) waiter.resolve(msg.content);
      else {
        waiter.reject(
          new ApiError(msg.status_string || "The call failed.", {
            code: msg.status_code,
            type: msg.type,
            content: msg.content,
          }),
        );
      }
      return;
    }
    if (msg.type === "session_closed") {
      this._sessionClosed(msg.content?.reason || "Your session has ended.");
      return;
    }
    for (const fn of this._pushHandlers.get(msg.type) || []) {
      try {
        fn(msg.content);
      } catch (err) {
        console.error(`push handler for ${msg.type} failed`, err);
      }
    }
  }

  _onClose(wasUp) {
    // Calls made from now on wait for the next login on a new socket.
    if (wasUp) this._setOpened();
    // A call sent before the drop may have been carried out: its answer is what was lost.
    this._failPending(
      "The connection to the daemon was lost before the answer came: the call may have been carried out.",
    );
  }

  _sessionClosed(reason) {
    this._stop("Your session has ended.", 1000, "session closed");
    this.dispatchEvent(new CustomEvent("session_closed", { detail: { reason } }));
  }

  /** Stop for good: every call waiting or made from now on fails with ``message``. */
  _stop(message, code, reason) {
    this.socket.stop(code, reason);
    this._failPending(message);
    this._rejectOpened(new ApiError(message, { code: "disconnected" }));
  }

  _failPending(message) {
    for (const waiter of this._pending.values()) {
      waiter.reject(new ApiError(message, { code: "disconnected" }));
    }
    this._pending.clear();
  }

  _send(type, content) {
    const ws = this.socket.ws;
    if (!this.socket.writable) {
      return Promise.reject(new ApiError("Not connected to the daemon.", { code: "disconnected", type }));
    }
    const id = uuid();
    return new Promise((resolve, reject) => {
      this._pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ type, uuid: id, content }));
    });
  }

  /** A call; waits for the connection to be up (and logged in) first. */
  async call(type, content = {}) {
    if (this.state !== "open") {
      if (this.socket.stopped) throw new ApiError("Not connected to the daemon.", { code: "disconnected", type });
      await this._opened;
    }
    return this._send(type, content);
  }

  onPush(type, fn) {
    if (!this._pushHandlers.has(type)) this._pushHandlers.set(type, new Set());
    this._pushHandlers.get(type).add(fn);
    return () => this._pushHandlers.get(type)?.delete(fn);
  }

  subscribe({ type, content = {}, unsubscribe = null, unsubscribeContent = null }) {
    const sub = { type, content, unsubscribe, cancelled: false, ready: null };
    this._subscriptions.add(sub);
    sub.ready = this.state === "open" ? this._resubscribe(sub) : this._opened.then(() => sub.last);
    // A failure is logged by _resubscribe; callers that await ``ready`` still see it.
    sub.ready.catch(() => {});
    return {
      ready: sub.ready,
      cancel: () => {
        sub.cancelled = true;
        this._subscriptions.delete(sub);
        if (!unsubscribe) return Promise.resolve();
        // One connection's requests are handled concurrently: an unsubscribe sent before
        // the subscribe is answered may be handled first (refused), leaving the
        // subscription behind. Send it once that answer is in.
        const answered = sub.last ? sub.last.then(() => {}, () => {}) : Promise.resolve();
        return answered.then(() => {
          if (this.state !== "open") return undefined;
          const body = unsubscribeContent ?? content;
          return this._send(unsubscribe, typeof body === "function" ? body() : body).catch(() => {});
        });
      },
    };
  }

  _resubscribe(sub) {
    const body = typeof sub.content === "function" ? sub.content() : sub.content;
    // ``content()`` may answer a promise (a console token minted first).
    sub.last = Promise.resolve(body).then((b) => this._send(sub.type, b));
    sub.last.catch((err) => {
      if (err.code !== "disconnected") console.warn(`${sub.type} failed`, err);
    });
    return sub.last;
  }
}
