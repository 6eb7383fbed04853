// The dashboard shell: session (token in sessionStorage), the WebSocket connection,
// the connection indicator and a hash router. Views are modules whose mount function
// takes (root, app, params) and returns a cleanup function (or nothing).

import { Connection, http } from "./api.js";
import { h, importFresh, replace, setTitle, toast } from "./ui.js";
import { mountLogin } from "./login.js";

const SESSION_KEY = "leosuite.session";

const routes = [
  { pattern: /^#\/login$/, public: true, load: async () => mountLogin, title: "Log in" },
  {
    pattern: /^#\/servers$/,
    load: async () => (await importFresh("./servers.js")).mount,
    nav: "servers",
    title: "Servers",
  },
  {
    pattern: /^#\/new$/,
    load: async () => (await importFresh("./forms.js")).mountCreate,
    nav: "servers",
    title: "New server",
  },
  {
    pattern: /^#\/servers\/([a-z0-9_-]{1,64})$/,
    load: async () => (await importFresh("./server.js")).mount,
    nav: "servers",
  },
  { pattern: /^#\/chat$/, load: async () => (await importFresh("./chat.js")).mount, nav: "chat", title: "Chat" },
  // The admin pages (ADMIN accounts; anyone else gets a "not allowed" page).
  {
    pattern: /^#\/admin(?:\/accounts)?$/,
    load: async () => (await importFresh("./admin-accounts.js")).mount,
    nav: "admin",
    title: "Accounts",
  },
  { pattern: /^#\/admin\/bans$/, load: async () => (await importFresh("./admin-bans.js")).mount, nav: "admin", title: "Bans" },
  {
    pattern: /^#\/admin\/sessions$/,
    load: async () => (await importFresh("./admin-sessions.js")).mount,
    nav: "admin",
    title: "Sessions",
  },
  { pattern: /^#\/admin\/log$/, load: async () => (await importFresh("./admin-log.js")).mount, nav: "admin", title: "Audit log" },
];

/** What every view gets. */
export const app = {
  conn: null,
  token: null,
  user: null, // {id, username, flags}
  permissions: [],
  wsUrl: null,
  /** Shown once by the login page (why the session ended). */
  loginMessage: "",
  /** "admin", "server.create", "server.create.command", "session.create", "moderate" */
  can(permission) {
    return this.permissions.includes("admin") || this.permissions.includes(permission);
  },
  navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
  /** Keep the session from an /api/auth/login answer and connect. */
  async signIn(login) {
    const session = {
      token: login.access_token,
      user: login.user,
      permissions: login.permissions || [],
    };
    await startSession(session);
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  },
  /** Log out (destroys the token on the daemon), or just forget a dead session. */
  async signOut(message = "", { destroy = true } = {}) {
    const token = this.token;
    endSession();
    if (destroy && token) {
      try {
        await http("/api/auth/logout", {}, token);
      } catch {
        // the token may be gone already; either way it is forgotten here
      }
    }
    this.loginMessage = message;
    this.navigate("#/login");
  },
};

let cleanup = null;
/** Bumped whenever the current view is left: a mount that finishes after that (its
 * page was left before it was ready) is cleaned up at once instead of kept. */
let generation = 0;

/** End the current view: run its cleanup, and make any mount still under way stale. */
function leaveView() {
  generation += 1;
  if (cleanup) {
    try {
      cleanup();
    } catch (err) {
      console.error(err);
    }
    cleanup = null;
  }
}

async function websocketUrl() {
  const config = await http("/api/auth/config");
  // The daemon names its WebSocket as this browser reaches it.
  return config.websocket;
}

async function startSession(session) {
  // First what can fail: nothing of the session is kept until the WebSocket is known.
  app.wsUrl = app.wsUrl || (await websocketUrl());
  app.token = session.token;
  app.user = session.user;
  app.permissions = session.permissions;
  const conn = new Connection(app.wsUrl, app.token);
  app.conn = conn;
  conn.addEventListener("state", (e) => showConnState(conn, e.detail));
  conn.addEventListener("session_closed", (e) => {
    if (app.conn !== conn) return;
    app.signOut(sessionEndedText(e.detail.reason), { destroy: false });
  });
  document.getElementById("who-name").textContent = app.user?.username || "";
  document.getElementById("who").hidden = false;
  document.getElementById("topnav").hidden = false;
  document.getElementById("nav-admin").hidden = !app.can("admin");
  conn.start();
}

function sessionEndedText(reason) {
  const why = reason ? ` (${reason})` : "";
  return `Your session has ended${why}. Please log in again.`;
}

function endSession() {
  // The view belongs to the session: stop it now, not when the login page replaces it
  // (a logout first waits for the daemon's answer).
  leaveView();
  replace(document.getElementById("view"));
  sessionStorage.removeItem(SESSION_KEY);
  if (app.conn) app.conn.close();
  app.conn = null;
  app.token = null;
  app.user = null;
  app.permissions = [];
  document.getElementById("who").hidden = true;
  document.getElementById("topnav").hidden = true;
  document.getElementById("nav-admin").hidden = true;
  replace(document.getElementById("conn-state"));
}

function showConnState(conn, { state, delay }) {
  if (app.conn !== conn) return;
  const box = document.getElementById("conn-state");
  box.dataset.state = state;
  if (state === "open") replace(box, h("span", { class: "dot dot-ok" }), "Connected");
  else if (state === "connecting") replace(box, h("span", { class: "dot" }), "Connecting…");
  else if (state === "reconnecting" && delay !== undefined) {
    replace(
      box,
      h("span", { class: "dot dot-bad" }),
      `Disconnected, retrying in ${delay}s `,
      h("button", {
        type: "button",
        class: "btn btn-small",
        text: "Retry now",
        on: { click: () => conn.reconnectNow() },
      }),
    );
  } else if (state === "reconnecting") replace(box, h("span", { class: "dot" }), "Reconnecting…");
  else replace(box);
}

async function route() {
  const hash = location.hash || "#/servers";
  const match = routes.map((r) => [r, hash.match(r.pattern)]).find(([, m]) => m);
  if (!match) {
    app.navigate("#/servers");
    return;
  }
  const [spec, m] = match;
  if (!spec.public && !app.token) {
    app.navigate("#/login");
    return;
  }
  if (spec.public && app.token) {
    app.navigate("#/servers");
    return;
  }
  leaveView();
  const gen = generation;
  // A route's ``title`` (a view may set a finer one with setTitle, as a server's page does).
  setTitle(spec.title || "");
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.toggleAttribute("aria-current", link.dataset.nav === spec.nav);
  }
  // Each view gets its own root: a view left before it was ready writes into a
  // detached element, never into the view that followed it.
  const root = h("div", { class: "view-root" });
  replace(document.getElementById("view"), root);
  try {
    const mount = await spec.load();
    if (gen !== generation) return;
    const done = (await mount(root, app, m.slice(1).map(decodeURIComponent))) || null;
    if (gen !== generation) {
      if (done) done();
      return;
    }
    cleanup = done;
    // Keyboard users continue in the new view, not at the top of the page (a view
    // that focused something itself, like the login form, keeps that).
    const focused = document.activeElement;
    if (!focused || focused === document.body || !focused.isConnected) {
      document.getElementById("view").focus({ preventScroll: true });
    }
  } catch (err) {
    if (gen !== generation) return;
    console.error(err);
    replace(
      root,
      h(
        "p",
        { class: "notice notice-error", role: "alert" },
        `This page failed to load: ${err.message} `,
        h("button", { type: "button", class: "btn btn-small", text: "Reload", on: { click: () => location.reload() } }),
      ),
    );
  }
}

async function boot() {
  document.getElementById("logout").addEventListener("click", () => {
    app.signOut("You have logged out.");
  });
  const saved = sessionStorage.getItem(SESSION_KEY);
  if (saved) {
    try {
      await startSession(JSON.parse(saved));
    } catch (err) {
      endSession();
      toast(`Could not restore the session: ${err.message}`, "error");
    }
  }
  window.addEventListener("hashchange", route);
  await route();
}

boot();
