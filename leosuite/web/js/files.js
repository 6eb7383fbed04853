// The Files tab of a server page: its directory as a file manager shows it (folders
// first, breadcrumbs), with upload (streamed, with progress and the daemon's limit),
// download, rename, delete, new file, new folder, and a text editor for the files it
// can show.
// Everything goes through the files HTTP API; its refusals are shown in its words.

import { http } from "./api.js";
import { askName } from "./files-dialogs.js";
import { filePane } from "./files-pane.js";
import { downloadFile, uploadFile } from "./files-transfer.js";
import { confirmDialog, errorText, formatBytes, h, keepFocus, replace } from "./ui.js";

const TYPE_LABELS = { directory: "Folder", file: "File", link: "Link", other: "Special file" };

const join = (parts) => parts.join("/");
const byKind = (a, b) =>
  Number(b.type === "directory") - Number(a.type === "directory") || a.name.localeCompare(b.name);

function modified(mtime) {
  return new Date(mtime * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export async function mountFiles(panel, app, name) {
  let cwd = [];
  let listing = null;
  let limits = { read: null, upload: null };
  let loads = 0;
  let disposed = false;
  let uploading = null;

  const call = (op, body) => http(`/api/server_files_${op}`, { server: name, ...body }, app.token);

  const crumbs = h("ol", { class: "files-crumbs" });
  const fileInput = h("input", {
    type: "file",
    multiple: true,
    hidden: true,
    tabindex: "-1",
    "aria-hidden": "true",
    on: { change: () => uploadChosen() },
  });
  const button = (text, onClick) => h("button", { type: "button", class: "btn", text, on: { click: onClick } });
  const uploadButton = button("Upload files…", () => fileInput.click());
  const newFileButton = button("New file…", () => newFile());
  const mkdirButton = button("New folder…", () => mkdir());
  const refreshButton = button("Refresh", () => load(cwd));
  const limitsNote = h("p", { class: "muted files-limits" });
  const progress = h("progress", { max: "100", value: "0", "aria-labelledby": "files-progress-label" });
  const progressLabel = h("span", { id: "files-progress-label" });
  const cancelUpload = h("button", {
    type: "button",
    class: "btn btn-small",
    text: "Cancel upload",
    on: { click: () => uploading?.abort() },
  });
  const progressBox = h("div", { class: "files-progress", hidden: true }, progressLabel, progress, cancelUpload);
  const errorBox = h("p", { class: "notice notice-error files-error", role: "alert", hidden: true });
  const statusBox = h("p", { class: "files-status", role: "status" });
  const caption = h("caption", { class: "visually-hidden" });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "files-table" },
    caption,
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Name", "Size", "Modified", "Type"].map((t) => h("th", { scope: "col", text: t })),
        h("th", { scope: "col", text: "Actions" }),
      ),
    ),
    tbody,
  );
  const listView = h(
    "div",
    { class: "files-list stack" },
    h(
      "div",
      { class: "files-bar" },
      h("nav", { class: "files-nav", "aria-label": "Folder" }, crumbs),
      h("div", { class: "row files-actions" }, uploadButton, fileInput, newFileButton, mkdirButton, refreshButton),
    ),
    limitsNote,
    progressBox,
    h("div", { class: "files-table-wrap" }, table),
  );
  const editorView = h("section", {
    class: "files-editor stack",
    hidden: true,
    "aria-labelledby": "files-editor-title",
  });
  replace(
    panel,
    h(
      "div",
      { class: "files stack" },
      h("h2", { class: "visually-hidden", text: "Files" }),
      errorBox,
      statusBox,
      listView,
      editorView,
    ),
  );

  const pane = filePane({
    view: editorView,
    listView,
    call,
    showError,
    showStatus,
    download,
    onClose: (focusName) => load(cwd, { focusName }),
  });

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
    if (message) statusBox.textContent = "";
  }

  function showStatus(message) {
    showError("");
    statusBox.textContent = message;
  }

  function renderCrumbs() {
    const parts = [["Server folder", []], ...cwd.map((part, i) => [part, cwd.slice(0, i + 1)])];
    replace(
      crumbs,
      parts.map(([label, to], i) =>
        h(
          "li",
          {},
          i === parts.length - 1
            ? h("span", { "aria-current": "location", class: "files-crumb-here", text: label })
            : h("button", { type: "button", class: "btn-link", text: label, on: { click: () => load(to) } }),
        ),
      ),
    );
  }

  function rowOf(entry) {
    const path = join([...cwd, entry.name]);
    const usable = entry.raw_name === undefined;
    const opener = usable
      ? h("button", {
          type: "button",
          class: "btn-link files-name",
          dataset: { name: entry.name },
          text: entry.type === "directory" ? `${entry.name}/` : entry.name,
          on: { click: () => (entry.type === "directory" ? load([...cwd, entry.name]) : openFile(entry)) },
        })
      : h("span", { class: "files-name", text: entry.name, title: "This name is not UTF-8: it cannot be used here." });
    const action = (label, fn, extra = {}) =>
      h("button", {
        type: "button",
        class: `btn btn-small ${extra.danger ? "btn-danger" : ""}`,
        text: label,
        "aria-label": `${label} ${entry.name}`,
        on: { click: fn },
      });
    const type = entry.type === "link" ? `Link → ${entry.target ?? "?"}` : TYPE_LABELS[entry.type] || entry.type;
    return h(
      "tr",
      {},
      h("th", { scope: "row", class: "files-name-cell" }, opener),
      h("td", { class: "files-size", text: entry.type === "file" ? formatBytes(entry.size) : "–" }),
      h("td", { class: "files-mtime", text: modified(entry.mtime) }),
      h("td", { class: "files-type", text: type }),
      h(
        "td",
        { class: "files-row-actions" },
        usable && entry.type === "file" ? action("Download", () => download(path, entry.name, entry.size)) : null,
        usable ? action("Rename", () => rename(entry)) : null,
        usable ? action("Delete", () => remove(entry), { danger: true }) : null,
      ),
    );
  }

  function render() {
    renderCrumbs();
    caption.textContent = `Files in ${cwd.length ? join(cwd) : "the server folder"}`;
    const entries = [...listing.entries].sort(byKind);
    const note = (text) => h("tr", {}, h("td", { colspan: "5", class: "muted", text }));
    replace(
      tbody,
      entries.length ? entries.map(rowOf) : note("This folder is empty."),
      listing.truncated ? note("Only the first 10 000 entries are shown.") : null,
    );
    limitsNote.textContent =
      `Uploads of up to ${formatBytes(limits.upload)} each. ` +
      `Files of up to ${formatBytes(limits.read)} open in the editor; download larger ones.`;
  }

  /** Show folder ``parts``; on failure stay where we are and say why. */
  async function load(parts, { focusName = null } = {}) {
    const mine = ++loads;
    const hadFocus = panel.contains(document.activeElement) ? document.activeElement : null;
    try {
      const answer = await call("list", { path: join(parts) });
      if (disposed || mine !== loads) return false;
      listing = answer;
      cwd = answer.path ? answer.path.split("/") : [];
      limits = { read: answer.max_read_bytes, upload: answer.max_upload_bytes };
      render();
      const target = focusName && tbody.querySelector(`[data-name="${CSS.escape(focusName)}"]`);
      // The focused button went with the old rows: the toolbar takes the focus.
      if (target) target.focus();
      else if (hadFocus && !hadFocus.isConnected) keepFocus(refreshButton);
      return true;
    } catch (err) {
      if (disposed || mine !== loads) return false;
      const where = parts.length ? `“${join(parts)}”` : "the server folder";
      showError(`Could not open ${where}: ${errorText(err)}`);
      return false;
    }
  }

  function openFile(entry) {
    return pane.open(join([...cwd, entry.name]), entry, limits.read);
  }

  async function download(path, filename, listedSize = null) {
    try {
      const request = { server: name, path, name: filename, token: app.token, size: listedSize };
      const size = await downloadFile(request);
      showStatus(`Downloaded ${path} (${formatBytes(size)}).`);
    } catch (err) {
      showError(`Could not download “${path}”: ${errorText(err)}`);
    }
  }

  async function mkdir() {
    let made = null;
    const done = await askName({
      title: "New folder",
      label: "Folder name",
      confirmLabel: "Create",
      submit: async (folder) => {
        await call("mkdir", { path: join([...cwd, folder]) });
        made = folder;
      },
    });
    // Once the dialog is closed: a modal dialog keeps the focus from the page.
    if (done) {
      showStatus(`Folder ${made} created.`);
      await load(cwd, { focusName: made });
    } else mkdirButton.focus();
  }

  async function newFile() {
    let made = null;
    const done = await askName({
      title: "New file",
      label: "File name",
      confirmLabel: "Create",
      submit: async (file) => {
        // A write replaces: a name the folder has now is refused here.
        const folder = await call("list", { path: join(cwd) });
        if (folder.entries.some((e) => e.name === file)) throw new Error(`“${file}” already exists in this folder.`);
        made = await call("write", { path: join([...cwd, file]), data: "" });
      },
    });
    if (!done) {
      newFileButton.focus();
      return;
    }
    await load(cwd);
    await openFile({ ...made, name: made.name ?? made.path.split("/").pop() });
  }

  async function rename(entry) {
    let to = null;
    const done = await askName({
      title: `Rename ${entry.name}`,
      label: "New name",
      value: entry.name,
      confirmLabel: "Rename",
      submit: async (newName) => {
        await call("rename", { path: join([...cwd, entry.name]), to: join([...cwd, newName]) });
        to = newName;
      },
    });
    if (done) {
      showStatus(`Renamed ${entry.name} to ${to}.`);
      await load(cwd, { focusName: to });
    } else tbody.querySelector(`[data-name="${CSS.escape(entry.name)}"]`)?.focus();
  }

  async function remove(entry) {
    const folder = entry.type === "directory";
    const what = folder ? `the folder “${entry.name}” and everything in it` : `“${entry.name}”`;
    const question = `Delete ${what}? This cannot be undone.`;
    const sure = await confirmDialog(question, { confirmLabel: "Delete", danger: true });
    if (!sure) {
      tbody.querySelector(`[data-name="${CSS.escape(entry.name)}"]`)?.focus();
      return;
    }
    try {
      await call("delete", { path: join([...cwd, entry.name]), recursive: folder });
      showStatus(`Deleted ${entry.name}.`);
      await load(cwd);
      keepFocus(refreshButton);
    } catch (err) {
      showError(`Could not delete “${entry.name}”: ${errorText(err)}`);
    }
  }

  async function uploadChosen() {
    const files = [...fileInput.files];
    fileInput.value = "";
    for (const file of files) {
      if (disposed || !(await uploadOne(file))) break;
    }
    await load(cwd);
    keepFocus(uploadButton);
  }

  async function uploadOne(file) {
    const path = join([...cwd, file.name]);
    if (limits.upload !== null && file.size > limits.upload) {
      const size = `${formatBytes(file.size)} (${file.size} bytes)`;
      const limit = `${formatBytes(limits.upload)} (${limits.upload} bytes, servers.files_max_upload_bytes)`;
      showError(
        `Could not upload “${file.name}”: it is ${size}, and the daemon takes uploads of at most ${limit}.`,
      );
      return false;
    }
    const existing = listing?.entries.find((e) => e.name === file.name);
    const replacing = `Replace “${file.name}” with the file you chose?`;
    if (existing && !(await confirmDialog(replacing, { confirmLabel: "Replace", danger: true }))) return true;
    const controller = new AbortController();
    uploading = controller;
    progressBox.hidden = false;
    progress.value = 0;
    progressLabel.textContent = `Uploading ${file.name}: 0%`;
    uploadButton.disabled = true;
    try {
      const answer = await uploadFile({
        server: name,
        path,
        file,
        token: app.token,
        signal: controller.signal,
        onProgress(sent, total) {
          const pct = total ? Math.floor((sent / total) * 100) : 100;
          progress.value = pct;
          progressLabel.textContent = `Uploading ${file.name}: ${pct}% (${formatBytes(sent)} of ${formatBytes(total)})`;
        },
      });
      showStatus(`Uploaded ${path} (${formatBytes(answer?.size ?? file.size)}).`);
      return true;
    } catch (err) {
      showError(`Could not upload “${file.name}”: ${errorText(err)}`);
      return false;
    } finally {
      uploading = null;
      progressBox.hidden = true;
      uploadButton.disabled = false;
    }
  }

  await load([]);
  return () => {
    disposed = true;
    uploading?.abort();
    pane.destroy();
  };
}
