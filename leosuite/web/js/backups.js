// The Backups tab of a server's page: its backups (newest first) with the quota they use,
// a download of each; its owner and ADMIN accounts also back it up now (with a note),
// restore (the server stopped) and delete. A backup or restore under way shows its
// progress, also after a reload. Uses backup.list, backup.status, backup.create,
// backup.restore, backup.delete, the backup.progress events and
// GET /api/server_backup_download (HTTP).

import { ACTIVE, progressBox } from "./backups-progress.js";
import { MAX_BROWSER_DOWNLOAD, fetchDownload } from "./files-transfer.js";
import { ApiError } from "./api.js";
import { watch } from "./live.js";
import { confirmDialog, errorText, formatBytes, h, keepFocus, replace, toast } from "./ui.js";

/** The states in which a server's files may be replaced by a restore. */
const AT_REST = ["stopped", "crashed"];

function stamp(value) {
  if (value === null || value === undefined || value === "") return null;
  const date = new Date(typeof value === "number" ? value * 1000 : value);
  return Number.isNaN(date.getTime()) ? null : date;
}

function created(b) {
  const date = stamp(b.created_at);
  if (!date) return h("td", { class: "nowrap", text: String(b.created_at ?? "—") });
  return h("td", { class: "nowrap" }, h("time", { datetime: date.toISOString(), text: date.toLocaleString() }));
}

/** The name the browser saves a backup under: the daemon's name for it, else one made up. */
function fileName(server, b) {
  const given = typeof b.name === "string" ? b.name.split("/").pop() : "";
  if (given && /\.(tar|tgz|zst|gz)/.test(given)) return given;
  const ext = b.compression === "gzip" ? "tar.gz" : b.compression === "zstd" ? "tar.zst" : "tar";
  return `${server}-${given || b.id}.${ext}`;
}

// A word as a POSIX shell reads it back unchanged.
const shellWord = (word) => (/^[\w./@%+=:,-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`);

function tooLarge(server, b, size) {
  const command = `leosuite backup download ${shellWord(server)} ${shellWord(String(b.id))}`;
  const message =
    `it is ${formatBytes(size)}, larger than the ${formatBytes(MAX_BROWSER_DOWNLOAD)} a browser tab ` +
    `downloads: get it with the command line, ${command}.`;
  return new ApiError(message, { code: "too_large" });
}

export function mountBackups(panel, app, name, status) {
  let closed = false;
  const manage = Boolean(status && status.manage);
  let state = status?.status || null;
  let list = [];
  // Whether this page's own call runs, when an event last came, the status poll's timer.
  let pending = false;
  let heard = 0;
  let poller = null;
  const note = h("p", { class: "muted", role: "status", text: "Loading…" });
  const quota = h("p", { class: "backup-quota", id: "backup-quota" });
  const problem = h("p", { class: "notice notice-error", id: "backup-error", role: "alert", hidden: true });
  const progress = progressBox(name);
  const restNote = h("p", { class: "notice notice-warn", id: "backup-restore-note", hidden: true });
  const body = h("tbody");
  const columns = ["Name", "Created", "Size", "Files", "By", "Note", "SHA-256", "Actions"];
  const table = h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-labelledby": "backups-caption", hidden: true },
    h(
      "table",
      { class: "admin-table backup-table" },
      h("caption", { id: "backups-caption", text: `Backups of ${name}` }),
      h("thead", {}, h("tr", {}, columns.map((t) => h("th", { scope: "col", text: t })))),
      body,
    ),
  );

  const noteInput = h("input", {
    id: "backup-note",
    name: "note",
    maxlength: "200",
    autocomplete: "off",
    "aria-describedby": "backup-note-help",
  });
  const create = h("button", { type: "submit", class: "btn btn-primary", text: "Back up now" });
  const form = h(
    "form",
    { class: "card stack backup-form", "aria-labelledby": "backup-form-title", novalidate: true },
    h("h3", { id: "backup-form-title", text: "New backup" }),
    h(
      "div",
      { class: "field" },
      h("label", { for: "backup-note", text: "Note (optional)" }),
      noteInput,
      h("span", {
        class: "help muted",
        id: "backup-note-help",
        text: "A few words to find it again, e.g. “before the 1.21 update”.",
      }),
    ),
    h("div", {}, create),
  );

  replace(
    panel,
    h(
      "section",
      { class: "stack backups", "aria-labelledby": "backups-title" },
      h("h2", { id: "backups-title", text: "Backups" }),
      h("p", {
        class: "muted",
        text: manage
          ? "A backup is a compressed archive of the server's directory. Restoring one replaces the " +
            "server's current files with it; the server must be stopped."
          : "Only the owner of this server or an ADMIN backs it up, restores or deletes its backups.",
      }),
      quota,
      problem,
      progress.el,
      manage ? form : null,
      restNote,
      note,
      table,
    ),
  );

  /** This page's own backup or restore call is under way: its bar shows from the start. */
  function begin(phase) {
    pending = true;
    onProgress({ server: name, phase }, false);
  }

  function end() {
    pending = false;
    progress.show({ phase: "done" });
    update();
  }

  function fail(text) {
    problem.hidden = !text;
    problem.textContent = text || "";
  }

  async function load() {
    try {
      const answer = await app.conn.call("backup.list", { server: name });
      if (closed) return;
      render(answer);
    } catch (err) {
      if (closed) return;
      note.hidden = true;
      note.textContent = "";
      fail(`The backups could not be loaded: ${errorText(err)}`);
    }
  }

  function render(answer) {
    list = [...(answer.backups || [])].sort((a, b) => (stamp(b.created_at) || 0) - (stamp(a.created_at) || 0));
    const q = answer.quota;
    quota.hidden = !q;
    if (q) {
      // A limit of 0 (or none) is no limit.
      const used = formatBytes(q.used ?? 0);
      quota.textContent = q.limit ? `Backups use ${used} of ${formatBytes(q.limit)}.` : `Backups use ${used} (no limit).`;
    }
    note.hidden = list.length > 0;
    note.className = "muted";
    note.textContent = "No backups yet.";
    table.hidden = list.length === 0;
    replace(body, list.map(row));
    update();
  }

  function row(b) {
    const sha = typeof b.sha256 === "string" ? b.sha256 : "";
    const label = b.name || String(b.id);
    const cells = [
      h("th", { scope: "row", class: "mono nowrap", text: label }),
      created(b),
      h("td", { class: "nowrap", text: formatBytes(b.size) }),
      h("td", { text: b.files === null || b.files === undefined ? "—" : String(b.files) }),
      h("td", { text: b.by || "—" }),
      h("td", { class: "backup-note-cell", text: b.note || "—" }),
      h("td", { class: "mono nowrap" }, h("abbr", { title: sha, text: sha ? `${sha.slice(0, 12)}…` : "—" })),
    ];
    const download = h("button", {
      type: "button",
      class: "btn btn-small",
      text: "Download",
      "aria-label": `Download ${label}`,
      on: { click: () => fetchBackup(b, download) },
    });
    const actions = [download];
    if (manage) {
      const restore = h("button", {
        type: "button",
        class: "btn btn-small",
        text: "Restore",
        "aria-label": `Restore ${label}`,
        dataset: { restore: "" },
        on: { click: () => restoreBackup(b, restore) },
      });
      const del = h("button", {
        type: "button",
        class: "btn btn-small btn-danger",
        text: "Delete",
        "aria-label": `Delete ${label}`,
        on: { click: () => deleteBackup(b, del) },
      });
      actions.push(" ", restore, " ", del);
    }
    cells.push(h("td", { class: "nowrap" }, actions));
    return h("tr", { dataset: { backup: String(b.id) } }, cells);
  }

  /** Enable what the server's state and a running backup allow, and say why not. */
  function update() {
    const atRest = AT_REST.includes(state);
    const busy = progress.running;
    create.disabled = busy;
    const why = busy
      ? "A backup or restore of this server is under way."
      : atRest
        ? ""
        : `Restore needs the server stopped: it is ${state || "in an unknown state"} now.`;
    restNote.hidden = !manage || !why || list.length === 0;
    restNote.textContent = why;
    for (const button of body.querySelectorAll("button[data-restore]")) {
      button.disabled = Boolean(why);
      button.title = why;
      if (why) button.setAttribute("aria-describedby", "backup-restore-note");
      else button.removeAttribute("aria-describedby");
    }
  }

  function onProgress(p, fromEvent = true) {
    if (!p || p.server !== name) return;
    if (fromEvent) heard = Date.now();
    const was = progress.running;
    progress.show(p);
    update();
    if (was && !progress.running) load();
    if (progress.running) follow();
  }

  // While a job runs without events reaching this page (it was opened after the job
  // began), its progress is asked for once a second.
  function follow() {
    if (poller || closed) return;
    poller = setInterval(() => {
      if (closed || !progress.running) {
        clearInterval(poller);
        poller = null;
      } else if (Date.now() - heard > 1000) askStatus();
    }, 1000);
  }

  async function askStatus() {
    try {
      const s = await app.conn.call("backup.status", { server: name });
      if (closed) return;
      if (s?.running && ACTIVE.includes(s.phase)) onProgress({ ...s, server: name }, false);
      else if (progress.running && !pending) onProgress({ server: name, phase: "done" }, false);
    } catch (err) {
      if (!closed) console.warn("backup.status failed", err);
    }
  }

  async function fetchBackup(b, button) {
    fail("");
    button.disabled = true;
    try {
      if (typeof b.size === "number" && b.size > MAX_BROWSER_DOWNLOAD) throw tooLarge(name, b, b.size);
      const query = new URLSearchParams({ server: name, id: String(b.id) });
      const init = { method: "GET", headers: { Authorization: `Bearer ${app.token}` } };
      const file = fileName(name, b);
      const size = await fetchDownload(`/api/server_backup_download?${query}`, init, file, (length) =>
        tooLarge(name, b, length),
      );
      if (!closed) toast(`Downloaded ${file} (${formatBytes(size)}).`, "ok");
    } catch (err) {
      if (!closed) fail(`Could not download “${b.name || b.id}”: ${errorText(err)}`);
    } finally {
      button.disabled = false;
      if (!closed) keepFocus(button);
    }
  }

  async function restoreBackup(b, button) {
    const sure = await confirmDialog(
      `Restore ${b.name || b.id} into ${name}? The server must be stopped; its current files are ` +
        "replaced by the backup's (kept aside until the restore is complete).",
      { confirmLabel: "Restore", danger: true },
    );
    if (!sure) {
      button.focus();
      return;
    }
    await act("backup.restore", b, button, `${name}: ${b.name || b.id} restored.`);
  }

  async function deleteBackup(b, button) {
    const sure = await confirmDialog(`Delete the backup ${b.name || b.id} of ${name}? This cannot be undone.`, {
      confirmLabel: "Delete",
      danger: true,
    });
    if (!sure) {
      button.focus();
      return;
    }
    await act("backup.delete", b, button, `${b.name || b.id} deleted.`);
  }

  async function act(call, b, button, done) {
    fail("");
    button.disabled = true;
    const restoring = call === "backup.restore";
    if (restoring) begin("restoring");
    try {
      await app.conn.call(call, { server: name, id: b.id });
      if (closed) return;
      toast(done, "ok");
    } catch (err) {
      if (!closed) fail(`${b.name || b.id}: ${errorText(err)}`);
    } finally {
      if (restoring) end();
      if (!closed) {
        await load();
        keepFocus(button.isConnected ? button : noteInput.isConnected ? noteInput : panel);
      }
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fail("");
    const text = noteInput.value.trim();
    create.disabled = true;
    begin("commands");
    try {
      const record = await app.conn.call("backup.create", text ? { server: name, note: text } : { server: name });
      if (closed) return;
      noteInput.value = "";
      toast(`${name}: backup ${record?.name || record?.id || ""} done.`, "ok");
    } catch (err) {
      if (!closed) fail(`The backup failed: ${errorText(err)}`);
    } finally {
      end();
      if (!closed) {
        await load();
        keepFocus(create);
      }
    }
  });

  const offs = [
    // Pushed to the connection that asked for the backup or restore only.
    app.conn.onPush("backup.progress", onProgress),
    watch(app, {
      onState(e) {
        if (e.server !== name) return;
        state = e.new;
        update();
      },
      onReconnect() {
        askStatus();
        load();
        app.conn.call("server.status", { server: name }).then(
          (s) => {
            if (closed) return;
            state = s.status;
            update();
          },
          () => {},
        );
      },
    }),
  ];

  askStatus();
  load();
  return () => {
    closed = true;
    clearInterval(poller);
    for (const off of offs) off();
  };
}
