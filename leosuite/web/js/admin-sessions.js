// #/admin/sessions: the community's sessions (chat channels and rooms) with their
// members; for each one send a message to every member, change its settings (title,
// closed, persistent, NSFM, member limit, chat kept) or close it with a reason.

import { adminFrame, dataTable, formatTime, formDialog, refusalText } from "./admin-common.js";
import { h, keepFocus, replace, toast } from "./ui.js";

export async function mount(root, app) {
  const body = adminFrame(root, app, "sessions", "Sessions");
  if (!body) return undefined;
  const status = h("p", { class: "muted", role: "status", text: "Loading sessions…" });
  const refresh = h("button", { type: "button", class: "btn", text: "Refresh" });
  const table = dataTable("Community sessions", ["Session", "Title", "Members", "State", "Started", "Actions"]);
  replace(
    body,
    h("div", { class: "page-head" }, h("p", { class: "muted", text: "The community's chat channels and rooms (not game servers)." }), refresh),
    status,
    table.el,
  );

  let disposed = false;

  async function load() {
    try {
      const sessions = await app.conn.call("session.list", {});
      if (disposed) return;
      render(sessions);
      status.textContent = sessions.length ? `${sessions.length} session(s) open.` : "No session is open.";
    } catch (err) {
      if (!disposed) status.textContent = `The sessions could not be loaded: ${refusalText(err)}`;
    }
  }

  function render(sessions) {
    replace(
      table.tbody,
      sessions.map((s) => {
        const states = [
          s.closed ? "closed" : "open",
          s.persistent ? "persistent" : null,
          s.nsfm ? "NSFM" : null,
          s.hasPassword ? "password" : null,
        ].filter(Boolean);
        const name = `#${s.alias}`;
        return h(
          "tr",
          { dataset: { session: s.alias } },
          h("th", { scope: "row", text: name }),
          h("td", { text: s.title || "–" }),
          h("td", { text: String(s.userCount) }),
          h("td", {}, h("span", { class: "row" }, states.map((t) => h("span", { class: "badge", text: t })))),
          h("td", { text: formatTime(s.startTime) }),
          h(
            "td",
            {},
            h(
              "div",
              { class: "row" },
              button("Members…", `Members of ${name}`, () => members(s)),
              button("Message…", `Send a message to ${name}`, () => say(s)),
              button("Settings…", `Settings of ${name}`, () => settings(s)),
              button("Close…", `Close ${name}`, () => close(s), "btn-danger"),
            ),
          ),
        );
      }),
    );
  }

  function button(text, label, action, extra = "") {
    const el = h("button", { type: "button", class: `btn btn-small ${extra}`.trim(), text, "aria-label": label });
    el.addEventListener("click", async () => {
      await action();
      keepFocus(el);
    });
    return el;
  }

  async function members(s) {
    let detail;
    try {
      detail = await app.conn.call("session.show", { session: s.id });
    } catch (err) {
      toast(refusalText(err), "error");
      return;
    }
    const list = detail.users.length
      ? h(
          "ul",
          { class: "admin-members" },
          detail.users.map((u) =>
            h(
              "li",
              {},
              h("strong", { text: u.name }),
              u.ip ? h("span", { class: "mono muted", text: ` ${u.ip}` }) : null,
              [u.auth ? "account" : "guest", u.op ? "operator" : null, u.mod ? "moderator" : null, u.muted ? "muted" : null]
                .filter(Boolean)
                .map((t) => h("span", { class: "badge", text: t })),
            ),
          ),
        )
      : h("p", { class: "muted", text: "Nobody is in this session." });
    await formDialog({
      title: `Members of #${detail.alias}`,
      fields: [],
      okLabel: "Done",
      cancelLabel: null,
      intro: `${detail.userCount} of at most ${detail.maxUserCount} member(s).`,
      submit: async () => true,
      extra: list,
    });
  }

  async function say(s) {
    await formDialog({
      title: `Message to #${s.alias}`,
      intro: "Every member sees it as a message from the server.",
      okLabel: "Send",
      fields: [
        { name: "message", label: "Message", type: "textarea", required: true },
        { name: "alert", label: "Show it as an alert", type: "checkbox" },
      ],
      submit: async (values) => {
        await app.conn.call("session.say", { session: s.id, message: values.message, alert: values.alert });
        toast(`Message sent to #${s.alias}.`, "ok");
      },
    });
  }

  async function settings(s) {
    let detail;
    try {
      detail = await app.conn.call("session.show", { session: s.id });
    } catch (err) {
      toast(refusalText(err), "error");
      return;
    }
    await formDialog({
      title: `Settings of #${s.alias}`,
      fields: [
        { name: "title", label: "Title", value: detail.title, help: "At most 100 characters." },
        { name: "maxUserCount", label: "Member limit", type: "number", value: String(detail.maxUserCount), min: 1, max: 100000, help: "Members already in stay." },
        { name: "closed", label: "Closed to new members", type: "checkbox", checked: detail.closed },
        { name: "persistent", label: "Persistent (kept when empty and across restarts)", type: "checkbox", checked: detail.persistent },
        { name: "nsfm", label: "Not suitable for minors (NSFM)", type: "checkbox", checked: detail.nsfm },
        { name: "preserveChat", label: "Keep the chat history", type: "checkbox", checked: detail.preserveChat },
      ],
      submit: async (values) => {
        const content = { session: s.id };
        for (const key of ["title", "closed", "persistent", "nsfm", "preserveChat"]) {
          if (values[key] !== detail[key]) content[key] = values[key];
        }
        const limit = Number(values.maxUserCount);
        if (values.maxUserCount !== String(detail.maxUserCount)) {
          if (!Number.isInteger(limit)) throw Object.assign(new Error("Enter a whole number."), { field: "maxUserCount" });
          content.maxUserCount = limit;
        }
        await app.conn.call("session.set", content);
        toast(`#${s.alias} is updated.`, "ok");
        await load();
      },
    });
  }

  async function close(s) {
    await formDialog({
      title: `Close #${s.alias}`,
      intro: "Every member is told why and removed; the session is gone.",
      okLabel: "Close session",
      danger: true,
      fields: [{ name: "reason", label: "Reason", help: "Shown to the members (at most 200 characters)." }],
      submit: async (values) => {
        await app.conn.call("session.close", { session: s.id, reason: values.reason });
        toast(`#${s.alias} is closed.`, "ok");
        await load();
      },
    });
  }

  refresh.addEventListener("click", () => load());
  await load();
  return () => {
    disposed = true;
  };
}
