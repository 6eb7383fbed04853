// Where a server's console is read: this daemon's own WebSocket connection, or, for a
// server another node runs, that node's WebSocket API with console tokens this daemon
// mints (a console's bytes never pass through another node). Commands and power actions
// still go to this daemon, which forwards them.

import { Connection } from "./api.js";

// A token is only needed to open a subscription or read a page, and lives a minute by
// default: one is used for this long, then a new one is minted.
const REUSE_MS = 5_000;

/** This daemon's connection. */
export function localSource(app) {
  return {
    node: null,
    state: () => app.conn.state,
    call: (type, content) => app.conn.call(type, content),
    onPush: (type, fn) => app.conn.onPush(type, fn),
    onState: () => () => {},
    subscribe: (options) => app.conn.subscribe(options),
    close() {},
  };
}

/** The node that runs ``server``, reached at the ``ws_url`` a console token names. */
export async function remoteSource(app, server) {
  let minted = await app.conn.call("server.console_token", { server });
  let mintedAt = Date.now();
  async function token() {
    if (Date.now() - mintedAt > REUSE_MS) {
      minted = await app.conn.call("server.console_token", { server });
      mintedAt = Date.now();
    }
    return minted.token;
  }
  const withToken = async (content) => ({ ...content, console_token: await token() });
  const conn = new Connection(minted.ws_url, null);
  conn.start();
  return {
    node: minted.node,
    state: () => conn.state,
    call: async (type, content) => conn.call(type, await withToken(content)),
    onPush: (type, fn) => conn.onPush(type, fn),
    onState: (fn) => {
      const listener = (event) => fn(event.detail);
      conn.addEventListener("state", listener);
      return () => conn.removeEventListener("state", listener);
    },
    subscribe: ({ content, ...options }) =>
      conn.subscribe({
        ...options,
        content: () => withToken(typeof content === "function" ? content() : content),
      }),
    close: () => conn.close(),
  };
}
