// Where a server's console is read: this daemon's own WebSocket connection, or, for a
// server another node runs, that node's WebSocket API with console tokens this daemon
// mints (a console's bytes never pass through another node). Commands and power actions
// still go to this daemon, which forwards them.

import { Connection } from "./api.js";

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
  const minted = await app.conn.call("server.console_token", { server });
  let unused = minted.token;
  // A token lives briefly (node.console_token_lifetime): each subscribe and page of
  // older output gets a fresh one (the first use takes the one minted to find the node).
  async function token() {
    if (unused) {
      const first = unused;
      unused = null;
      return first;
    }
    return (await app.conn.call("server.console_token", { server })).token;
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
