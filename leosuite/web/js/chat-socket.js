// The seed 003 chat as data: one reconnecting WebSocket logged in as this account, the
// channels it is in (messages and members), rejoined after every reconnect. Frames are
// the documented numeric types (docs/community.md); the view (chat.js) only renders.

import { ReconnectingSocket } from "./socket.js";

export const T = { ERROR: -1, MESSAGE: 0, LOGIN: 2, LOGOUT: 3, JOIN: 4, LEAVE: 5, USERS: 6 };
const KEEP_MESSAGES = 500;
/** The chat's subprotocol, and the one that carries the access token after its prefix. */
export const CHAT_PROTOCOL = "leosuite.chat";
export const TOKEN_PROTOCOL = "leosuite.token.";

/** A channel's key: its name without the leading "#", in lower case. */
export const keyOf = (name) => String(name || "").replace(/^#+/, "").toLowerCase();
/** Nicks and channel names compare without regard to case. */
export const same = (a, b) => String(a).toLowerCase() === String(b).toLowerCase();

/**
 * The chat connection of ``nick`` (logged in with ``token`` at ``wsUrl``).
 *
 * ``channels``: key -> ``{name, messages: [{time, user, to, message, history, system}],
 * users: [nick]}`` for every channel joined (at most 500 messages each).
 *
 * Events (``detail`` in parentheses):
 *  - ``state`` (``{state, delay?, reason?}``): the socket's state (socket.js); "open"
 *    once logged in, "held" when the chat refused the login (``reason``: its words);
 *  - ``error`` (``{message}``): the chat refused something, or a frame could not be sent;
 *  - ``joined`` (``{key}``) and ``left`` (``{key, channel, reason}``): this account
 *    joined or left a channel;
 *  - ``members`` (``{key, user?}``): a channel's member list changed (``user``: the
 *    member who joined or left, when one did);
 *  - ``message`` (``{key, msg}``): a line was added to a channel (``msg`` as above);
 *  - ``notice`` (``{user, message}``): a server-wide line while in no channel.
 */
export class ChatSocket extends EventTarget {
  constructor(wsUrl, nick, token) {
    super();
    this.nick = nick;
    this.channels = new Map();
    this.loggedIn = false;
    // key -> {name, password}: channels to rejoin after a reconnect, each with the
    // password it was joined (or opened) with, so a reopened channel keeps it.
    this._wanted = new Map();
    this._tried = new Map(); // key -> the password of a join not answered yet
    this._refusal = "";
    this._seen = new Map(); // key -> Set of message ids (history replays again on rejoin)
    // The token goes in Sec-WebSocket-Protocol, never in the URL (docs/community.md).
    const url = new URL(`chat/login/${encodeURIComponent(nick)}`, wsUrl);
    this.socket = new ReconnectingSocket(url, {
      protocols: [CHAT_PROTOCOL, TOKEN_PROTOCOL + token],
      onMessage: (event) => this._onMessage(event),
      onClose: () => this._onClose(),
    });
    this.socket.addEventListener("state", (e) => this._emit("state", e.detail));
  }

  get state() {
    return this.socket.state;
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  start() {
    this.socket.start();
  }

  retryNow() {
    this.socket.retryNow();
  }

  /** Log out and stop for good. */
  close() {
    if (this.socket.writable) this.socket.ws.send(JSON.stringify({ type: T.LOGOUT }));
    this.socket.stop(1000, "bye");
  }

  /** Send one frame; false (and an ``error`` event) when the socket is not open. */
  send(frame) {
    if (!this.socket.writable) {
      this._emit("error", { message: "Not connected to the chat." });
      return false;
    }
    this.socket.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Join channel ``name``; one that does not exist is opened, protected by ``password``
   * when one is given (docs/community.md). */
  join(name, password = "") {
    const frame = { type: T.JOIN, channel: name };
    if (password) frame.password = password;
    this._tried.set(keyOf(name), password);
    if (!this.loggedIn && (this.state === "connecting" || this.state === "reconnecting")) {
      // A join asked for while the chat still connects or logs in is sent once it has.
      this._wanted.set(keyOf(name), { name, password });
      return true;
    }
    return this.send(frame);
  }

  leave(key) {
    const ch = this.channels.get(key);
    return ch ? this.send({ type: T.LEAVE, channel: ch.name }) : false;
  }

  say(key, message) {
    const ch = this.channels.get(key);
    return ch ? this.send({ type: T.MESSAGE, dest: ch.name, message }) : false;
  }

  _onClose() {
    const refusal = this._refusal;
    this.loggedIn = false;
    this._refusal = "";
    // A refused login would be refused again: wait for "Try again".
    if (refusal) this.socket.hold(refusal);
  }

  _onMessage(event) {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (err) {
      console.warn("chat frame", err);
      return;
    }
    if (frame && typeof frame === "object") this._onFrame(frame);
  }

  _onFrame(f) {
    if (f.type === T.ERROR) {
      if (!this.loggedIn) this._refusal = String(f.message || "");
      this._emit("error", { message: f.message || "The chat refused that." });
    } else if (f.type === T.LOGIN && same(f.user, this.nick)) {
      this.loggedIn = true;
      this.socket.up();
      for (const { name, password } of this._wanted.values()) this.join(name, password);
    } else if (f.type === T.JOIN) {
      this._onJoin(f);
    } else if (f.type === T.LEAVE) {
      this._onLeave(f);
    } else if (f.type === T.USERS && f.channel) {
      const key = keyOf(f.channel);
      const ch = this.channels.get(key);
      if (ch) ch.users = Array.isArray(f.users) ? f.users.map(String) : [];
      this._emit("members", { key });
    } else if (f.type === T.MESSAGE) {
      const msg = {
        time: f.time,
        user: f.user,
        to: f.to,
        message: String(f.message ?? ""),
        history: Boolean(f.history),
        system: f.user === "SYSTEM",
      };
      if (f.dest) this._add(keyOf(f.dest), msg);
      else for (const key of this.channels.keys()) this._add(key, msg); // server-wide line
      if (!f.dest && !this.channels.size) this._emit("notice", { user: f.user, message: msg.message });
    }
  }

  _onJoin(f) {
    const key = keyOf(f.channel);
    if (same(f.user, this.nick)) {
      if (!this.channels.has(key)) {
        this.channels.set(key, { name: f.channel, messages: [], users: [] });
        this._seen.set(key, new Set());
      }
      this.channels.get(key).name = f.channel;
      const password = this._tried.has(key) ? this._tried.get(key) : this._wanted.get(key)?.password;
      this._wanted.set(key, { name: f.channel, password: password ?? "" });
      this._tried.delete(key);
      this.send({ type: T.USERS, channel: f.channel });
      this._emit("joined", { key });
      return;
    }
    const ch = this.channels.get(key);
    if (ch && !ch.users.includes(f.user)) ch.users.push(f.user);
    this._add(key, { time: f.time, system: true, message: `${f.user} joined` });
    this._emit("members", { key, user: f.user });
  }

  _onLeave(f) {
    const key = keyOf(f.channel);
    if (same(f.user, this.nick)) {
      this._wanted.delete(key);
      this.channels.delete(key);
      this._seen.delete(key);
      this._emit("left", { key, channel: f.channel, reason: f.reason || "" });
      return;
    }
    const ch = this.channels.get(key);
    if (ch) ch.users = ch.users.filter((u) => u !== f.user);
    const why = f.reason && f.reason !== "left" ? ` (${f.reason})` : "";
    this._add(key, { time: f.time, system: true, message: `${f.user} left${why}` });
    this._emit("members", { key, user: f.user });
  }

  _add(key, msg) {
    const ch = this.channels.get(key);
    if (!ch) return;
    const seen = this._seen.get(key);
    const id = `${msg.time}|${msg.user}|${msg.message}`;
    if (msg.history && seen.has(id)) return; // replayed again after a rejoin
    seen.add(id);
    ch.messages.push(msg);
    if (ch.messages.length > KEEP_MESSAGES) ch.messages.shift();
    this._emit("message", { key, msg });
  }
}
