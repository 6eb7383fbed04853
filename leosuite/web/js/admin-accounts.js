// #/admin/accounts: every account (name, flags, locked, last login), and for each one
// change flags, lock/unlock, reset the password and delete; a form to create one. The
// daemon refuses what would leave no unlocked ADMIN; changes to one's own account ask
// first, since they can end this very session.

import { adminFrame, dataTable, formatTime, formDialog, refusalText } from "./admin-common.js";
import { confirmDialog, h, keepFocus, replace, toast } from "./ui.js";

/** The flags the dashboard offers, with what each one grants. */
const FLAGS = [
  ["ADMIN", "Administrator: every server, the admin pages, the audit log"],
  ["HOST", "May create servers"],
  ["MOD", "Moderates the community chat and sessions"],
];

function flagSet(text) {
  return new Set((text || "").split(",").map((f) => f.trim()).filter(Boolean));
}

export async function mount(root, app) {
  const body = adminFrame(root, app, "accounts", "Accounts");
  if (!body) return undefined;
  const status = h("p", { class: "muted", role: "status", text: "Loading accounts…" });
  const create = h("button", { type: "button", class: "btn btn-primary", text: "New account" });
  const table = dataTable("All accounts", ["Username", "Flags", "Status", "Last login", "Actions"]);
  replace(body, h("div", { class: "page-head" }, h("p", { class: "muted", text: "Accounts that may log in to this daemon." }), create), status, table.el);

  let disposed = false;
  let policy = { min_length: 8, max_length: 1024 };
  const me = app.user?.id;

  async function load() {
    try {
      const answer = await app.conn.call("account.list", {});
      if (disposed) return;
      policy = answer.password_policy || policy;
      render(answer.accounts || []);
      status.textContent = `${answer.accounts.length} account(s).`;
    } catch (err) {
      if (!disposed) status.textContent = `The accounts could not be loaded: ${refusalText(err)}`;
    }
  }

  function passwordHelp() {
    return `At least ${policy.min_length} characters (at most ${policy.max_length}).`;
  }

  function render(accounts) {
    replace(
      table.tbody,
      accounts.map((a) => {
        const self = a.id === me;
        const name = h("th", { scope: "row" }, a.username, self ? h("span", { class: "muted", text: " (you)" }) : null);
        const flags = a.flags ? a.flags.split(",").map((f) => h("span", { class: "badge", text: f })) : h("span", { class: "muted", text: "none" });
        const state = a.locked ? h("span", { class: "badge badge-bad", text: "Locked" }) : h("span", { class: "badge badge-ok", text: "Active" });
        const label = (what) => `${what} ${a.username}`;
        const actions = h(
          "div",
          { class: "row" },
          button("Flags…", label("Change the flags of"), () => editFlags(a, self)),
          button(a.locked ? "Unlock" : "Lock", label(a.locked ? "Unlock" : "Lock"), (el) => toggleLock(a, self, el)),
          button("Reset password…", label("Reset the password of"), () => resetPassword(a, self)),
          button("Delete…", label("Delete"), () => remove(a, self), "btn-danger"),
        );
        return h(
          "tr",
          { dataset: { account: a.username } },
          name,
          h("td", {}, h("span", { class: "row" }, flags)),
          h("td", {}, state),
          h("td", { text: a.lastLogin ? formatTime(a.lastLogin) : "–" }),
          h("td", {}, actions),
        );
      }),
    );
  }

  function button(text, label, action, extra = "") {
    const el = h("button", { type: "button", class: `btn btn-small ${extra}`.trim(), text, "aria-label": label });
    el.addEventListener("click", () => action(el));
    return el;
  }

  async function change(account, content, done) {
    const answer = await app.conn.call("account.set", { id: account.id, ...content });
    toast(done(answer), "ok");
    await load();
    return answer;
  }

  async function editFlags(a, self) {
    const current = flagSet(a.flags);
    await formDialog({
      title: `Flags of ${a.username}`,
      intro: self ? "This is your own account: without ADMIN you lose the admin pages at once." : "",
      fields: FLAGS.map(([flag, help]) => ({ name: flag, label: flag, type: "checkbox", checked: current.has(flag), help })),
      submit: async (values) => {
        // Flags the dashboard does not offer (Drawpile's) are kept as they are.
        const kept = [...current].filter((f) => !FLAGS.some(([name]) => name === f));
        const chosen = FLAGS.map(([f]) => f).filter((f) => values[f] && f !== "ADMIN");
        if (self && current.has("ADMIN") && !values.ADMIN) {
          const sure = await confirmDialog("Remove ADMIN from your own account? Your session ends at once.", {
            confirmLabel: "Remove ADMIN",
            danger: true,
          });
          if (!sure) throw new Error("Nothing was changed.");
        }
        return change(a, { flags: [...kept, ...chosen].join(","), admin: Boolean(values.ADMIN) }, (x) => `Flags of ${x.username}: ${x.flags || "none"}.`);
      },
    });
  }

  async function toggleLock(a, self, el) {
    if (!a.locked) {
      const text = self
        ? "Lock your own account? You are logged out at once and cannot log in again until another ADMIN unlocks it."
        : `Lock ${a.username}? Its sessions end at once and it cannot log in until unlocked.`;
      if (!(await confirmDialog(text, { confirmLabel: "Lock", danger: true }))) return;
    }
    el.disabled = true;
    try {
      await change(a, { locked: !a.locked }, (x) => `${x.username} is ${x.locked ? "locked" : "unlocked"}.`);
    } catch (err) {
      toast(refusalText(err), "error");
    } finally {
      el.disabled = false;
      keepFocus(el);
    }
  }

  async function resetPassword(a, self) {
    await formDialog({
      title: `New password for ${a.username}`,
      intro: self ? "This is your own account: you will have to log in again." : "Its sessions end at once.",
      fields: [{ name: "password", label: "New password", type: "password", required: true, autocomplete: "new-password", help: passwordHelp() }],
      okLabel: "Set password",
      submit: async (values) => {
        if (!values.password) throw fieldError("password", "Enter the new password.");
        return change(a, { password: values.password }, (x) => `The password of ${x.username} is changed.`);
      },
    });
  }

  async function remove(a, self) {
    const text = self
      ? `Delete your own account ${a.username}? You are logged out at once. This cannot be undone.`
      : `Delete the account ${a.username}? Its sessions end at once. This cannot be undone.`;
    if (!(await confirmDialog(text, { confirmLabel: "Delete", danger: true }))) return;
    try {
      await app.conn.call("account.delete", { id: a.id });
      toast(`The account ${a.username} is deleted.`, "ok");
      await load();
    } catch (err) {
      toast(refusalText(err), "error");
    }
  }

  create.addEventListener("click", async () => {
    await formDialog({
      title: "New account",
      okLabel: "Create",
      fields: [
        { name: "username", label: "Username", required: true, help: "1-32 characters: letters, digits, '_', '-' or '.'." },
        { name: "password", label: "Password", type: "password", required: true, autocomplete: "new-password", help: passwordHelp() },
        ...FLAGS.map(([flag, help]) => ({ name: flag, label: flag, type: "checkbox", help })),
        { name: "locked", label: "Locked (cannot log in yet)", type: "checkbox" },
      ],
      submit: async (values) => {
        const flags = FLAGS.map(([f]) => f).filter((f) => values[f]);
        const made = await app.conn.call("account.create", {
          username: values.username,
          password: values.password,
          flags: flags.join(","),
          locked: values.locked,
        });
        toast(`The account ${made.username} is created.`, "ok");
        await load();
        return made;
      },
    });
    keepFocus(create);
  });

  await load();
  return () => {
    disposed = true;
  };
}

function fieldError(field, message) {
  const err = new Error(message);
  err.field = field;
  return err;
}
