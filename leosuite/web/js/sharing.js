// The Sharing tab of a server's page (its owner and ADMIN accounts only): the accounts the
// server is shared with, a checkbox per right for each (Save, Revoke), and a form that
// shares it with one more account. Uses server.share_list and server.share_set.

import { confirmDialog, errorText, h, keepFocus, replace, toast } from "./ui.js";

/** The rights in the daemon's order, with what each lets the other account do. */
export const RIGHTS = [
  { right: "console", label: "Console", about: "read the console and the live figures" },
  { right: "commands", label: "Commands", about: "type commands into the console" },
  { right: "power", label: "Power", about: "start, stop, restart, kill, install" },
  { right: "files", label: "Files", about: "list, read and change its files" },
  { right: "settings", label: "Settings", about: "read and change its settings" },
];

export function mountSharing(panel, app, name) {
  let closed = false;
  const status = h("p", { class: "muted", role: "status", text: "Loading…" });
  const body = h("tbody");
  const table = h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-labelledby": "sharing-table-caption" },
    h(
      "table",
      { class: "admin-table share-table" },
      h("caption", { id: "sharing-table-caption", text: `Accounts ${name} is shared with` }),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col", text: "Account" }),
          RIGHTS.map((r) => h("th", { scope: "col", title: r.about, text: r.label })),
          h("th", { scope: "col", text: "Actions" }),
        ),
      ),
      body,
    ),
  );

  const account = h("input", {
    id: "share-account",
    name: "account",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    maxlength: "32",
    "aria-describedby": "share-account-help",
  });
  const boxes = RIGHTS.map((r) => ({
    right: r.right,
    input: h("input", { type: "checkbox", id: `share-new-${r.right}`, name: r.right }),
    about: r,
  }));
  const formError = h("p", { class: "field-error", id: "share-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", text: "Share" });
  const form = h(
    "form",
    { class: "card stack share-form", "aria-labelledby": "share-form-title", novalidate: true },
    h("h3", { id: "share-form-title", text: "Share with another account" }),
    h(
      "div",
      { class: "field" },
      h("label", { for: "share-account", text: "Account (username)" }),
      account,
      h("span", {
        class: "help muted",
        id: "share-account-help",
        text: "The account gets exactly the rights ticked below on this server only.",
      }),
    ),
    h(
      "fieldset",
      { class: "stack share-rights" },
      h("legend", { text: "Rights" }),
      boxes.map((b) =>
        h(
          "div",
          { class: "check-row" },
          b.input,
          h("label", { for: b.input.id }, h("strong", { text: b.about.label }), ` — ${b.about.about}`),
        ),
      ),
    ),
    formError,
    h("div", {}, submit),
  );

  replace(
    panel,
    h(
      "section",
      { class: "stack sharing", "aria-labelledby": "sharing-title" },
      h("h2", { id: "sharing-title", text: "Sharing" }),
      h("p", {
        class: "muted",
        text:
          "Other accounts see this server with the rights you give them. Only you (the owner) " +
          "and ADMIN accounts change them; they never share it further or destroy it.",
      }),
      status,
      table,
      form,
    ),
  );

  async function load() {
    try {
      const answer = await app.conn.call("server.share_list", { server: name });
      if (!closed) render(answer.shares || []);
    } catch (err) {
      if (closed) return;
      status.hidden = false;
      status.className = "notice notice-error";
      status.textContent = `The sharing list could not be loaded: ${errorText(err)}`;
    }
  }

  function render(shares) {
    status.hidden = shares.length > 0;
    status.className = "muted";
    status.textContent = "Not shared with any account.";
    table.hidden = shares.length === 0;
    replace(body, shares.map(row));
  }

  function row(share) {
    const who = share.account;
    const checks = RIGHTS.map((r) =>
      h("input", {
        type: "checkbox",
        checked: share.rights.includes(r.right),
        "aria-label": `${r.label} for ${who}`,
        dataset: { right: r.right },
      }),
    );
    const save = h("button", {
      type: "button",
      class: "btn btn-small",
      text: "Save",
      "aria-label": `Save the rights of ${who}`,
    });
    const revoke = h("button", {
      type: "button",
      class: "btn btn-small btn-danger",
      text: "Revoke",
      "aria-label": `Revoke every right of ${who}`,
    });
    save.addEventListener("click", () => {
      const rights = checks.filter((c) => c.checked).map((c) => c.dataset.right);
      change(who, rights, save);
    });
    revoke.addEventListener("click", async () => {
      const sure = await confirmDialog(`Take every right on ${name} away from ${who}?`, {
        confirmLabel: "Revoke",
        danger: true,
      });
      if (sure) change(who, [], revoke);
      else revoke.focus();
    });
    return h(
      "tr",
      { dataset: { account: who } },
      h("th", { scope: "row" }, who, share.locked ? h("span", { class: "muted", text: " (locked)" }) : null),
      checks.map((c) => h("td", {}, c)),
      h("td", { class: "nowrap" }, save, " ", revoke),
    );
  }

  async function change(who, rights, button) {
    button.disabled = true;
    try {
      const answer = await app.conn.call("server.share_set", { server: name, account: who, rights });
      if (closed) return;
      const what = answer.rights.length ? answer.rights.join(", ") : "no rights any more";
      toast(`${answer.account} has ${what} on ${name}.`, "ok");
      await load();
    } catch (err) {
      if (!closed) toast(`Changing the rights of ${who} failed: ${errorText(err)}`, "error");
    } finally {
      button.disabled = false;
      if (!closed && button.isConnected) keepFocus(button);
      else if (!closed) keepFocus(account);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const who = account.value.trim();
    const rights = boxes.filter((b) => b.input.checked).map((b) => b.right);
    formError.textContent = "";
    account.removeAttribute("aria-invalid");
    if (!who) {
      formError.textContent = "Type the username of the account to share with.";
      account.setAttribute("aria-invalid", "true");
      account.focus();
      return;
    }
    if (!rights.length) {
      formError.textContent = "Tick at least one right.";
      boxes[0].input.focus();
      return;
    }
    submit.disabled = true;
    try {
      const answer = await app.conn.call("server.share_set", { server: name, account: who, rights });
      if (closed) return;
      toast(`${name} is shared with ${answer.account}: ${answer.rights.join(", ")}.`, "ok");
      account.value = "";
      for (const b of boxes) b.input.checked = false;
      await load();
    } catch (err) {
      if (closed) return;
      formError.textContent = errorText(err);
      if (err.content?.field === "account") account.setAttribute("aria-invalid", "true");
    } finally {
      submit.disabled = false;
      if (!closed) keepFocus(submit);
    }
  });

  load();
  return () => {
    closed = true;
  };
}
