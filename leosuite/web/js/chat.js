// The chat view (#/chat): the seed 003 WebSocket chat with this account's token.
// Channels are the chat's sessions (listed with the WebSocket API's session.list);
// frames are the documented numeric types (docs/community.md). Text is textContent only.

import { errorText, h, replace } from "./ui.js";

const T = { ERROR: -1, MESSAGE: 0, LOGIN: 2, LOGOUT: 3, JOIN: 4, LEAVE: 5, USERS: 6 };
const BACKOFF_MAX = 30;
const KEEP_MESSAGES = 500;

const keyOf = (name) => String(name || "").replace(/^#+/, "").toLowerCase();
const same = (a, b) => String(a).toLowerCase() === String(b).toLowerCase();

/** A frame's time (unix seconds) as a Date; now when it has none that makes sense. */
function dateOf(time) {
  const d = new Date(Number(time) * 1000);
  return Number.isFinite(d.getTime()) ? d : new Date();
}

function clock(time) {
  return dateOf(time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export async function mount(root, app) {
  const nick = app.user.username;
  let ws = null;
  let closed = false;
  let attempt = 0;
  let timer = null;
  let loggedIn = false;
  let refusal = "";
  const channels = new Map(); // key -> {name, messages: [], seen: Set, users: []}
  let current = null;
  const wanted = new Set(); // channels to rejoin after a reconnect

  // -- layout ---------------------------------------------------------------------------

  const state = h("div", { class: "chat-state", role: "status", "aria-live": "polite" });
  const errors = h("div", { class: "chat-errors", "aria-live": "assertive" });
  const joinName = h("input", { id: "chat-join-name", type: "text", placeholder: "lobby", autocomplete: "off" });
  const joinPass = h("input", { id: "chat-join-pass", type: "password", autocomplete: "off" });
  const joinForm = h(
    "form",
    { class: "chat-join stack", novalidate: true },
    h("label", { for: joinName.id, text: "Channel" }),
    h("div", { class: "chat-join-row" }, joinName, h("button", { type: "submit", class: "btn btn-primary", text: "Join" })),
    h("label", { for: joinPass.id, class: "muted", text: "Password (if it has one)" }),
    joinPass,
  );
  const mine = h("ul", { class: "chat-mine", "aria-label": "Your channels" });
  const open = h("ul", { class: "chat-open", "aria-label": "Open channels" });
  const refresh = h("button", { type: "button", class: "btn btn-small", text: "Refresh" });
  const title = h("h2", { class: "chat-title", id: "chat-title", text: "Chat" });
  const leave = h("button", { type: "button", class: "btn btn-small", text: "Leave", hidden: true });
  const log = h("ol", { class: "chat-log", role: "log", "aria-label": "Messages", tabindex: "0" });
  const text = h("input", { id: "chat-text", type: "text", autocomplete: "off", enterkeyhint: "send", disabled: true });
  const sendBtn = h("button", { type: "submit", class: "btn btn-primary", text: "Send", disabled: true });
  const msgForm = h(
    "form",
    { class: "chat-send", novalidate: true },
    h("label", { for: text.id, class: "chat-send-label", text: "Message" }),
    h("div", { class: "chat-send-row" }, text, sendBtn),
  );
  const users = h("ul", { class: "chat-users", "aria-label": "Members" });
  const usersCount = h("span", { class: "muted" });

  replace(
    root,
    h(
      "div",
      { class: "chat" },
      h("div", { class: "chat-top" }, state, errors),
      h(
        "aside",
        { class: "chat-side card" },
        h("h2", { class: "chat-side-title", text: "Channels" }),
        mine,
        joinForm,
        h("div", { class: "row chat-open-head" }, h("h3", { text: "Open channels" }), refresh),
        open,
      ),
      h(
        "section",
        { class: "chat-main card", "aria-labelledby": "chat-title" },
        h("div", { class: "row chat-head" }, title, leave),
        log,
        msgForm,
      ),
      h(
        "aside",
        { class: "chat-members card" },
        h("h2", { class: "chat-side-title" }, "Members ", usersCount),
        users,
      ),
    ),
  );

  // -- state shown --------------------------------------------------------------------

  function showError(message) {
    const item = h(
      "div",
      { class: "notice notice-error chat-error", role: "alert" },
      h("span", { text: message }),
      h("button", {
        type: "button",
        class: "btn btn-small",
        text: "Dismiss",
        on: { click: () => item.remove() },
      }),
    );
    errors.append(item);
    while (errors.children.length > 3) errors.firstChild.remove();
  }

  function setState(kind, message, action = null) {
    if (!message) {
      replace(state);
      state.className = "chat-state";
      return;
    }
    state.className = `chat-state notice notice-${kind}`;
    replace(state, h("span", { text: message }), action);
  }

  function renderMine() {
    replace(
      mine,
      [...channels.entries()].map(([key, ch]) =>
        h(
          "li",
          {},
          h("button", {
            type: "button",
            class: "btn btn-small chat-channel",
            "aria-current": key === current ? "true" : null,
            text: `#${ch.name}`,
            on: { click: () => select(key) },
          }),
        ),
      ),
    );
    if (!channels.size) mine.append(h("li", { class: "muted", text: "No channel joined yet." }));
  }

  function line(msg) {
    const classes = ["chat-msg"];
    if (msg.system) classes.push("chat-msg-system");
    if (msg.history) classes.push("chat-msg-history");
    return h(
      "li",
      { class: classes.join(" ") },
      h("time", { datetime: dateOf(msg.time).toISOString(), text: clock(msg.time) }),
      " ",
      h("span", { class: "chat-nick", text: msg.user ? `${msg.user}${msg.to ? ` → ${msg.to}` : ""}` : "*" }),
      " ",
      h("span", { class: "chat-text", text: msg.message }),
    );
  }

  function renderChannel() {
    const ch = channels.get(current);
    title.textContent = ch ? `#${ch.name}` : "Chat";
    leave.hidden = !ch;
    // While reconnecting the box stays editable (what is typed is kept); Send waits.
    text.disabled = !ch;
    sendBtn.disabled = !ch || !loggedIn;
    text.placeholder = ch ? `Message #${ch.name}` : "Join a channel to chat";
    replace(log, ch ? ch.messages.map(line) : h("li", { class: "muted", text: "Join a channel to see its messages." }));
    log.scrollTop = log.scrollHeight;
    renderUsers();
    renderMine();
  }

  function renderUsers() {
    const ch = channels.get(current);
    const names = ch ? ch.users : [];
    usersCount.textContent = ch ? `(${names.length})` : "";
    replace(
      users,
      names.map((n) => h("li", { class: same(n, nick) ? "chat-me" : null, text: n })),
    );
  }

  function select(key) {
    current = channels.has(key) ? key : null;
    renderChannel();
  }

  function add(key, msg) {
    const ch = channels.get(key);
    if (!ch) return;
    const id = `${msg.time}|${msg.user}|${msg.message}`;
    if (msg.history && ch.seen.has(id)) return; // replayed again after a rejoin
    ch.seen.add(id);
    ch.messages.push(msg);
    if (ch.messages.length > KEEP_MESSAGES) ch.messages.shift();
    if (key !== current) return;
    const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    if (log.firstChild?.classList?.contains("muted")) replace(log);
    log.append(line(msg));
    if (log.children.length > KEEP_MESSAGES) log.firstChild.remove();
    if (atEnd) log.scrollTop = log.scrollHeight;
  }

  // -- the socket ---------------------------------------------------------------------

  function send(frame) {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      showError("Not connected to the chat.");
      return false;
    }
    ws.send(JSON.stringify(frame));
    return true;
  }

  function onFrame(f) {
    if (f.type === T.ERROR) {
      if (!loggedIn) refusal = String(f.message || "");
      showError(f.message || "The chat refused that.");
    } else if (f.type === T.LOGIN && same(f.user, nick)) {
      loggedIn = true;
      attempt = 0;
      setState("", "");
      replace(errors); // what was refused belonged to the connection before
      for (const name of wanted) send({ type: T.JOIN, channel: name });
      renderChannel();
    } else if (f.type === T.JOIN) {
      const key = keyOf(f.channel);
      if (same(f.user, nick)) {
        if (!channels.has(key)) channels.set(key, { name: f.channel, messages: [], seen: new Set(), users: [] });
        channels.get(key).name = f.channel;
        wanted.add(f.channel);
        if (!current || key === keyOf(joinName.value)) current = key;
        send({ type: T.USERS, channel: f.channel });
        renderChannel();
        listChannels();
      } else {
        const ch = channels.get(key);
        if (ch && !ch.users.includes(f.user)) ch.users.push(f.user);
        add(key, { time: f.time, system: true, message: `${f.user} joined` });
        listSoon();
        if (key === current) renderUsers();
      }
    } else if (f.type === T.LEAVE) {
      const key = keyOf(f.channel);
      if (same(f.user, nick)) {
        for (const w of wanted) if (keyOf(w) === key) wanted.delete(w);
        channels.delete(key);
        if (f.reason && f.reason !== "quit") showError(`You left #${f.channel}: ${f.reason}`);
        if (current === key) current = channels.keys().next().value ?? null;
        renderChannel();
        listChannels();
      } else {
        const ch = channels.get(key);
        if (ch) ch.users = ch.users.filter((u) => u !== f.user);
        const why = f.reason && f.reason !== "left" ? ` (${f.reason})` : "";
        add(key, { time: f.time, system: true, message: `${f.user} left${why}` });
        listSoon();
        if (key === current) renderUsers();
      }
    } else if (f.type === T.USERS && f.channel) {
      const ch = channels.get(keyOf(f.channel));
      if (ch) ch.users = Array.isArray(f.users) ? f.users.map(String) : [];
      renderUsers();
    } else if (f.type === T.MESSAGE) {
      const msg = {
        time: f.time,
        user: f.user,
        to: f.to,
        message: String(f.message ?? ""),
        history: Boolean(f.history),
        system: f.user === "SYSTEM",
      };
      if (f.dest) add(keyOf(f.dest), msg);
      else for (const key of channels.keys()) add(key, msg); // server-wide line
      if (!f.dest && !channels.size) setState("ok", `${f.user}: ${msg.message}`);
    }
  }

  function connect() {
    if (closed) return;
    clearTimeout(timer);
    loggedIn = false;
    refusal = "";
    setState("warn", attempt ? "Reconnecting to the chat…" : "Connecting to the chat…");
    const url = new URL(`chat/login/${encodeURIComponent(nick)}?token=${encodeURIComponent(app.token)}`, app.wsUrl);
    let sock;
    try {
      sock = new WebSocket(url);
    } catch (err) {
      lost(`cannot connect (${err.message})`);
      return;
    }
    ws = sock;
    sock.addEventListener("message", (event) => {
      if (sock !== ws) return;
      try {
        onFrame(JSON.parse(event.data));
      } catch (err) {
        console.warn("chat frame", err);
      }
    });
    sock.addEventListener("close", (event) => {
      if (sock !== ws || closed) return;
      ws = null;
      loggedIn = false;
      renderChannel();
      if (refusal) refused(refusal);
      else lost(event.reason || `closed (${event.code})`);
    });
  }

  function retryButton(label) {
    return h("button", {
      type: "button",
      class: "btn btn-small",
      text: label,
      on: {
        click: () => {
          attempt += 1;
          connect();
        },
      },
    });
  }

  /** The chat refused the login: no automatic retry (it would be refused again). */
  function refused(message) {
    const taken = /taken/i.test(message);
    const why = taken
      ? `The nick ${nick} is in use: this account has the chat open in another tab or window. Close it there, then try again.`
      : `The chat refused the login: ${message}`;
    setState("error", why, retryButton("Try again"));
  }

  /** The connection was lost: reconnect with backoff (1 s, 2 s, 4 s … 30 s). */
  function lost(reason) {
    attempt += 1;
    const delay = Math.min(BACKOFF_MAX, 2 ** (attempt - 1));
    setState("error", `Disconnected from the chat (${reason}). Reconnecting in ${delay}s.`, retryButton("Reconnect now"));
    timer = setTimeout(connect, delay * 1000);
  }

  // -- the channel list (WebSocket API) ---------------------------------------------

  let listTimer = null;
  function listSoon() {
    if (!listTimer) listTimer = setTimeout(() => ((listTimer = null), listChannels()), 2000);
  }

  async function listChannels() {
    let sessions;
    try {
      sessions = await app.conn.call("session.list", {});
    } catch (err) {
      if (!closed) replace(open, h("li", { class: "muted", text: `Cannot list channels: ${errorText(err)}` }));
      return;
    }
    if (closed) return;
    const items = (Array.isArray(sessions) ? sessions : []).filter((s) => s && !s.closed);
    replace(
      open,
      items.map((s) =>
        h(
          "li",
          { class: "chat-open-item" },
          h("button", {
            type: "button",
            class: "btn btn-small",
            text: `#${s.alias}`,
            "aria-label": `Join #${s.alias}`,
            on: { click: () => join(s.alias, s.hasPassword) },
          }),
          h("span", { class: "muted", text: ` ${s.userCount} ${s.userCount === 1 ? "member" : "members"}${s.hasPassword ? " · password" : ""}` }),
          s.title ? h("span", { class: "chat-open-title", text: s.title }) : null,
        ),
      ),
    );
    if (!items.length) open.append(h("li", { class: "muted", text: "No open channels: join one to create it." }));
  }

  function join(name, needsPassword = false) {
    const key = keyOf(name);
    if (channels.has(key)) {
      select(key);
      return;
    }
    if (needsPassword && !joinPass.value) {
      joinName.value = name;
      joinPass.focus();
      showError(`#${name} has a password: type it, then Join.`);
      return;
    }
    joinName.value = name;
    const frame = { type: T.JOIN, channel: name };
    if (joinPass.value) frame.password = joinPass.value;
    if (send(frame)) joinPass.value = "";
  }

  joinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = joinName.value.trim();
    if (!name) {
      showError("Type a channel name to join.");
      joinName.focus();
      return;
    }
    join(name);
  });
  msgForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const ch = channels.get(current);
    if (!ch || !text.value || !loggedIn) return;
    if (send({ type: T.MESSAGE, dest: ch.name, message: text.value })) text.value = "";
  });
  leave.addEventListener("click", () => {
    const ch = channels.get(current);
    if (ch) send({ type: T.LEAVE, channel: ch.name });
  });
  refresh.addEventListener("click", () => listChannels());

  renderChannel();
  listChannels();
  connect();

  return () => {
    closed = true;
    clearTimeout(timer);
    clearTimeout(listTimer);
    if (ws) {
      const sock = ws;
      ws = null;
      if (sock.readyState === WebSocket.OPEN) sock.send(JSON.stringify({ type: T.LOGOUT }));
      sock.close(1000, "bye");
    }
  };
}
