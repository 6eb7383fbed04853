// The filter bar of the server list: a name filter for every account and, for ADMIN
// accounts (who see every account's servers), an owner filter: me, everyone, one account.

import { h } from "./ui.js";

let uid = 0;

/** The owner choices: "all", "none" (no owner left) and "u:<username>". */
const EVERYONE = "all";
const NOBODY = "none";
const account = (username) => `u:${username}`;

/**
 * ``serverFilter({admin, me, onChange})`` → {el, matches(name, owner), setOwners(list),
 * active()}. ``matches`` says whether a server (its name, its owner's username or null)
 * passes; ``setOwners`` refreshes the owner choices from the usernames seen in the list;
 * ``onChange()`` runs when the user changes either filter.
 */
export function serverFilter({ admin, me, onChange }) {
  const id = `server-filter-${++uid}`;
  const text = h("input", {
    type: "search",
    id: `${id}-name`,
    class: "filter-name",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "Part of a name",
    on: { input: () => onChange() },
  });
  const owner = admin
    ? h("select", { id: `${id}-owner`, class: "filter-owner", on: { change: () => onChange() } })
    : null;
  const el = h(
    "div",
    { class: "server-filters", role: "search", "aria-label": "Filter the servers" },
    h("div", { class: "filter-field" }, h("label", { for: text.id, text: "Name" }), text),
    owner ? h("div", { class: "filter-field" }, h("label", { for: owner.id, text: "Owner" }), owner) : null,
  );
  let known = "";

  function setOwners(list) {
    if (!owner) return;
    const others = [...new Set(list.filter((u) => u && u !== me))].sort((a, b) => a.localeCompare(b));
    const orphans = list.some((u) => !u);
    const key = JSON.stringify([others, orphans]);
    if (key === known) return;
    known = key;
    const chosen = owner.value || EVERYONE;
    const options = [
      [EVERYONE, "Everyone"],
      [account(me), `Me (${me})`],
      ...others.map((u) => [account(u), u]),
      ...(orphans ? [[NOBODY, "No owner (account deleted)"]] : []),
    ];
    owner.replaceChildren(...options.map(([value, label]) => h("option", { value, text: label })));
    // A choice whose account is no longer listed falls back to everyone.
    owner.value = options.some(([value]) => value === chosen) ? chosen : EVERYONE;
  }

  function matches(name, ownerName) {
    const part = text.value.trim().toLowerCase();
    if (part && !name.includes(part)) return false;
    const chosen = owner ? owner.value || EVERYONE : EVERYONE;
    if (chosen === EVERYONE) return true;
    if (chosen === NOBODY) return !ownerName;
    return chosen === account(ownerName ?? "");
  }

  const active = () => Boolean(text.value.trim()) || Boolean(owner && owner.value && owner.value !== EVERYONE);

  setOwners([]);
  return { el, matches, setOwners, active };
}
