// The chat view (#/chat): the community chat (chat-socket.js) as this account, not a
// game server's in-game chat. Channels are the chat's sessions (listed with the
// WebSocket API's session.list). Text is textContent only.

import { ChatSocket, keyOf, same } from "./chat-socket.js";
import { errorText, h, replace } from "./ui.js";

const KEEP_LINES = 500;

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
  const chat = new ChatSocket(app.wsUrl, nick, app.token);
  const channels = chat.channels;
  let closed = false;
  let current = null;
  let listed = new Map(); // key -> the channel's session.list entry

  // -- layout ---------------------------------------------------------------------------

  const state = h("div", { class: "chat-state", role: "status", "aria-live": "polite" });
  const errors = h("div", { class: "chat-errors", "aria-live": "assertive" });
  const joinName = h("input", { id: "chat-join-name", type: "text", placeholder: "lobby", autocomplete: "off" });
  const joinPass = h("input", {
    id: "chat-join-pass",
    type: "password",
    autocomplete: "off",
    "aria-describedby": "chat-join-pass-hint",
  });
  const joinForm = h(
    "form",
    { class: "chat-join stack", novalidate: true },
    h("label", { for: joinName.id, text: "Channel" }),
    h("div", { class: "chat-join-row" }, joinName, h("button", { type: "submit", class: "btn btn-primary", text: "Join" })),
    h("label", { for: joinPass.id, text: "Password" }),
    joinPass,
    h("p", {
      id: "chat-join-pass-hint",
      class: "muted chat-hint",
      text: "Needed to join a channel that has one. Opening a new channel: a password here protects it, and others must type it to join.",
    }),
  );
  const mine = h("ul", { class: "chat-mine", "aria-label": "Your channels" });
  const open = h("ul", { class: "chat-open", "aria-label": "Open channels" });
  const refresh = h("button", { type: "button", class: "btn btn-small", text: "Refresh" });
  const title = h("h2", { class: "chat-title", id: "chat-title", text: "Chat" });
  const locked = h("span", { class: "chat-locked muted", text: "password-protected", hidden: true });
  const leave = h("button", { type: "button", class: "btn btn-small", text: "Leave", hidden: true });
  // The scrolling box is the live region; the lines inside it stay a list.
  const log = h("ol", { class: "chat-lines" });
  const logBox = h("div", { class: "chat-log", role: "log", "aria-label": "Messages", tabindex: "0" }, log);
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
      "section",
      { class: "stack chat-page", "aria-labelledby": "chat-page-title" },
      h(
        "div",
        { class: "chat-intro" },
        h("h1", { id: "chat-page-title", text: "Community chat" }),
        h("p", {
          class: "muted chat-about",
          text:
            "Channels of this leosuite's community, where its accounts (and chat clients connected to it) talk. " +
            "This is not a game server's in-game chat: to talk to a game's players, use that server's console.",
        }),
      ),
      h(
        "div",
        { class: "chat" },
        h("div", { class: "chat-top" }, state, errors),
        h(
          "aside",
          { class: "chat-side card", "aria-labelledby": "chat-channels-title" },
          h("h2", { class: "chat-side-title", id: "chat-channels-title", text: "Channels" }),
          mine,
          joinForm,
          h("div", { class: "row chat-open-head" }, h("h3", { text: "Open channels" }), refresh),
          open,
        ),
        h(
          "section",
          { class: "chat-main card", "aria-labelledby": "chat-title" },
          h("div", { class: "row chat-head" }, h("div", { class: "chat-head-name" }, title, locked), leave),
          logBox,
          msgForm,
        ),
        h(
          "aside",
          { class: "chat-members card", "aria-labelledby": "chat-members-title" },
          h("h2", { class: "chat-side-title", id: "chat-members-title" }, "Members ", usersCount),
          users,
        ),
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
    sendBtn.disabled = !ch || !chat.loggedIn;
    text.placeholder = ch ? `Message #${ch.name}` : "Join a channel to chat";
    locked.hidden = !(ch && listed.get(current)?.hasPassword);
    replace(log, ch ? ch.messages.map(line) : h("li", { class: "muted", text: "Join a channel to see its messages." }));
    logBox.scrollTop = logBox.scrollHeight;
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

  function appendLine(key, msg) {
    if (key !== current) return;
    const atEnd = logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < 40;
    if (log.firstChild?.classList?.contains("muted")) replace(log);
    log.append(line(msg));
    if (log.children.length > KEEP_LINES) log.firstChild.remove();
    if (atEnd) logBox.scrollTop = logBox.scrollHeight;
  }

  // -- what the chat says ---------------------------------------------------------

  function retryButton(label) {
    return h("button", { type: "button", class: "btn btn-small", text: label, on: { click: () => chat.retryNow() } });
  }

  /** The chat refused the login: no automatic retry (it would be refused again). */
  function refused(message) {
    const taken = /taken/i.test(message);
    const why = taken
      ? `The nick ${nick} is in use: this account has the chat open in another tab or window. Close it there, then try again.`
      : `The chat refused the login: ${message}`;
    setState("error", why, retryButton("Try again"));
  }

  chat.addEventListener("state", ({ detail: { state: now, delay, reason } }) => {
    const waiting = now === "reconnecting" && delay !== undefined;
    if (now === "connecting") setState("warn", "Connecting to the chat…");
    else if (now === "reconnecting" && !waiting) setState("warn", "Reconnecting to the chat…");
    else if (waiting) {
      const text = `Disconnected from the chat (${reason}). Reconnecting in ${delay}s.`;
      setState("error", text, retryButton("Reconnect now"));
    } else if (now === "held") refused(reason);
    else if (now === "open") {
      setState("", "");
      replace(errors); // what was refused belonged to the connection before
    }
    // Send follows the login: off once it is lost, on once logged in again.
    if (now === "open" || now === "held" || waiting) renderChannel();
  });
  chat.addEventListener("error", ({ detail: { message } }) => {
    const hint = /needs a password$/.test(message) ? ": type it in Password, then Join." : "";
    showError(`${message}${hint}`);
  });
  chat.addEventListener("joined", ({ detail: { key } }) => {
    replace(errors); // a join that worked makes what was refused before stale
    if (!current || key === keyOf(joinName.value)) current = key;
    renderChannel();
    listChannels();
  });
  chat.addEventListener("left", ({ detail: { key, channel, reason } }) => {
    if (reason && reason !== "quit") showError(`You left #${channel}: ${reason}`);
    if (current === key) current = channels.keys().next().value ?? null;
    renderChannel();
    listChannels();
  });
  chat.addEventListener("members", ({ detail: { key, user } }) => {
    if (user) listSoon();
    if (key === current) renderUsers();
  });
  chat.addEventListener("message", ({ detail: { key, msg } }) => appendLine(key, msg));
  chat.addEventListener("notice", ({ detail: { user, message } }) => setState("ok", `${user}: ${message}`));

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
    listed = new Map(items.map((s) => [keyOf(s.alias), s]));
    locked.hidden = !(channels.has(current) && listed.get(current)?.hasPassword);
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
    if (chat.join(name, joinPass.value)) joinPass.value = "";
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
    if (!channels.has(current) || !text.value || !chat.loggedIn) return;
    if (chat.say(current, text.value)) text.value = "";
  });
  leave.addEventListener("click", () => chat.leave(current));
  refresh.addEventListener("click", () => listChannels());

  renderChannel();
  listChannels();
  chat.start();

  return () => {
    closed = true;
    clearTimeout(listTimer);
    chat.close();
  };
}
