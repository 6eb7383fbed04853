// #/admin/bans: the bans in force (address or network, reason, when added, expiry),
// a form to add one (an address or a CIDR network, a reason, an optional expiry) and
// a button to remove each. A ban is enforced at once on every listener; one that covers
// this browser's own address is added only once confirmed, and then ends this session.

import { adminFrame, dataTable, fieldText, formatTime, localToIso, refusalText } from "./admin-common.js";
import { confirmDialog, h, keepFocus, replace, toast } from "./ui.js";

export async function mount(root, app) {
  const body = adminFrame(root, app, "bans", "Bans");
  if (!body) return undefined;
  const status = h("p", { class: "muted", role: "status", text: "Loading bans…" });
  const table = dataTable("Bans in force", ["Address", "Reason", "Added", "Expires", "Actions"]);

  const address = h("input", { id: "ban-address", name: "ip", required: true, autocomplete: "off", "aria-describedby": "ban-address-help ban-address-error", spellcheck: "false" });
  const comment = h("input", { id: "ban-comment", name: "comment", autocomplete: "off", maxlength: "1000", "aria-describedby": "ban-comment-error" });
  const expires = h("input", { id: "ban-expires", name: "expires", type: "datetime-local", "aria-describedby": "ban-expires-help ban-expires-error" });
  const fields = { ip: address, comment, expires };
  const errors = {
    ip: h("p", { id: "ban-address-error", class: "field-error", hidden: true }),
    comment: h("p", { id: "ban-comment-error", class: "field-error", hidden: true }),
    expires: h("p", { id: "ban-expires-error", class: "field-error", hidden: true }),
  };
  const problem = h("p", { class: "field-error", role: "alert", hidden: true });
  const add = h("button", { type: "submit", class: "btn btn-primary", text: "Add ban" });
  const form = h(
    "form",
    { class: "card stack ban-form", "aria-labelledby": "ban-form-title", novalidate: true },
    h("h2", { id: "ban-form-title", text: "Add a ban" }),
    h(
      "div",
      { class: "admin-form-grid" },
      h("div", { class: "field" }, h("label", { for: "ban-address", class: "required", text: "Address or network" }), address,
        h("span", { id: "ban-address-help", class: "help", text: "An IPv4 or IPv6 address (203.0.113.7) or a network in CIDR form (203.0.113.0/24)." }), errors.ip),
      h("div", { class: "field" }, h("label", { for: "ban-comment", text: "Reason" }), comment, errors.comment),
      h("div", { class: "field" }, h("label", { for: "ban-expires", text: "Expires" }), expires,
        h("span", { id: "ban-expires-help", class: "help", text: "Your local time; empty: never." }), errors.expires),
    ),
    problem,
    h("div", { class: "row" }, add),
  );
  replace(body, form, h("h2", { text: "Bans in force" }), status, table.el);

  let disposed = false;

  async function load() {
    try {
      const bans = await app.conn.call("ban.list", {});
      if (disposed) return;
      render(bans);
      status.textContent = bans.length ? `${bans.length} ban(s) in force.` : "No bans in force.";
    } catch (err) {
      if (!disposed) status.textContent = `The bans could not be loaded: ${refusalText(err)}`;
    }
  }

  function render(bans) {
    replace(
      table.tbody,
      bans.map((b) => {
        const target = b.subnet ? `${b.ip}/${b.subnet}` : b.ip;
        const remove = h("button", { type: "button", class: "btn btn-small btn-danger", text: "Remove", "aria-label": `Remove the ban of ${target}` });
        remove.addEventListener("click", () => unban(b, target, remove));
        return h(
          "tr",
          { dataset: { ban: target } },
          h("th", { scope: "row", class: "mono", text: target }),
          h("td", { text: b.comment || "–" }),
          h("td", { text: formatTime(b.added) }),
          h("td", { text: b.expires ? formatTime(b.expires) : "Never" }),
          h("td", {}, remove),
        );
      }),
    );
  }

  async function unban(ban, target, el) {
    if (!(await confirmDialog(`Remove the ban of ${target}?`, { confirmLabel: "Remove ban", danger: true }))) return;
    el.disabled = true;
    try {
      await app.conn.call("ban.remove", { id: ban.id });
      toast(`The ban of ${target} is removed.`, "ok");
      await load();
    } catch (err) {
      el.disabled = false;
      keepFocus(el);
      toast(refusalText(err), "error");
    }
  }

  // A ban of this browser's own address is refused until confirmed: it ends this session.
  async function addBan(content) {
    try {
      return await app.conn.call("ban.add", content);
    } catch (err) {
      if (err?.field !== "confirm_self") throw err;
      const question =
        "This ban covers the address this browser uses. Adding it signs you out and disconnects " +
        "this browser at once; you cannot reconnect from this address until the ban is removed " +
        "from another one. Add it?";
      if (!(await confirmDialog(question, { confirmLabel: "Ban my address", danger: true }))) return null;
      return app.conn.call("ban.add", { ...content, confirm_self: true });
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const [name, el] of Object.entries(errors)) {
      el.hidden = true;
      fields[name].removeAttribute("aria-invalid");
    }
    problem.hidden = true;
    add.disabled = true;
    try {
      const content = { ip: address.value.trim(), comment: comment.value };
      if (expires.value) content.expires = localToIso(expires.value);
      const ban = await addBan(content);
      if (!ban) return;
      form.reset();
      const target = ban.subnet ? `${ban.ip}/${ban.subnet}` : ban.ip;
      if (ban.appliesToYou) {
        toast(`Banned ${target}. ${ban.message}`, "error");
        return; // this session ends now: the daemon says so next and closes the connection
      }
      toast(`Banned ${target}.`, "ok");
      await load();
    } catch (err) {
      const field = err?.field === "subnet" || err?.field === "address" ? "ip" : err?.field;
      if (field && errors[field]) {
        errors[field].textContent = fieldText(err);
        errors[field].hidden = false;
        fields[field].setAttribute("aria-invalid", "true");
        fields[field].focus();
      } else {
        problem.textContent = refusalText(err);
        problem.hidden = false;
      }
    } finally {
      add.disabled = false;
    }
  });

  await load();
  return () => {
    disposed = true;
  };
}
