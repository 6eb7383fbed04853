// The Files tab's file pane, shown in place of the folder: the editor for a text file
// the daemon reads whole, or, for a file too large or not text, why it is not opened
// and a download. The editor's modules load on the first file opened.

import { confirmDialog, errorText, formatBytes, h, importFresh, keepFocus, replace } from "./ui.js";

/**
 * ``view``: the pane's element; ``listView``: the folder's, hidden while the pane is
 * open; ``call(op, body)``: a files API call on the server; ``showError``/``showStatus``:
 * the tab's messages; ``download(path, name)``; ``onClose(name)``: back to the folder.
 * Returns ``{open(path, entry, readLimit), destroy()}``.
 */
export function filePane({ view, listView, call, showError, showStatus, download, onClose }) {
  let editor = null;
  let disposed = false;

  function head(path, ...actions) {
    return [
      h("h3", { id: "files-editor-title", class: "mono files-editor-title", text: path }),
      h("div", { class: "row files-editor-actions" }, ...actions),
    ];
  }

  function show(children) {
    showError("");
    showStatus("");
    listView.hidden = true;
    view.hidden = false;
    replace(view, children);
  }

  function close(name) {
    editor?.destroy();
    editor = null;
    replace(view);
    view.hidden = true;
    listView.hidden = false;
    onClose(name);
  }

  function button(text, onClick, primary = false) {
    return h("button", { type: "button", class: primary ? "btn btn-primary" : "btn", text, on: { click: onClick } });
  }

  function downloadOnly(path, name, why) {
    const back = button("Back to the folder", () => close(name));
    show([
      ...head(path, button("Download", () => download(path, name), true), back),
      h("p", { class: "notice", text: `${why} Download it instead.` }),
    ]);
    back.focus();
  }

  async function open(path, entry, readLimit) {
    if (entry.type === "file" && readLimit !== null && entry.size > readLimit) {
      const [size, limit] = [formatBytes(entry.size), formatBytes(readLimit)];
      downloadOnly(path, entry.name, `This file is ${size}: larger than the ${limit} the editor opens.`);
      return;
    }
    let answer;
    try {
      // A link or a special file is read too: the daemon says why it is not opened.
      answer = await call("read", { path });
    } catch (err) {
      showError(`Could not open “${path}”: ${errorText(err)}`);
      return;
    }
    if (disposed) return;
    if (answer.encoding !== "utf-8") {
      downloadOnly(path, entry.name, "This file is not text (it is not valid UTF-8), so it cannot be edited here.");
      return;
    }
    await edit(path, entry.name, answer.data);
  }

  async function edit(path, name, text) {
    const box = h("div", { class: "files-editor-box" });
    const dirty = h("span", { class: "files-dirty muted", text: "" });
    const save = button("Save", () => saveFile(), true);
    const closeButton = button("Close", () => closeEditor());
    show([
      ...head(path, save, button("Download", () => download(path, name)), closeButton, dirty),
      box,
      h("p", { class: "muted", text: "Ctrl+S saves. Tab and Shift+Tab leave the editor." }),
    ]);
    let changed = false;
    let saving = false;
    try {
      const { createEditor } = await importFresh("./files-editor.js");
      if (disposed) return;
      editor = createEditor(box, {
        text,
        filename: name,
        label: `Contents of ${path}`,
        onSave: () => saveFile(),
        onChange: () => {
          changed = true;
          dirty.textContent = "Unsaved changes";
        },
      });
      editor.focus();
    } catch (err) {
      replace(box, h("p", { class: "notice notice-error", text: `The editor could not be loaded: ${err.message}` }));
      return;
    }

    async function saveFile() {
      if (saving || !editor) return;
      saving = true;
      save.disabled = true;
      save.textContent = "Saving…";
      try {
        const written = await call("write", { path, data: editor.text() });
        changed = false;
        dirty.textContent = "";
        showStatus(`Saved ${path} (${formatBytes(written.size)}) at ${new Date().toLocaleTimeString()}.`);
      } catch (err) {
        showError(`Could not save “${path}”: ${errorText(err)}`);
      } finally {
        saving = false;
        save.disabled = false;
        save.textContent = "Save";
        keepFocus(save);
      }
    }

    async function closeEditor() {
      const question = `Close ${path} without saving your changes?`;
      if (changed && !(await confirmDialog(question, { confirmLabel: "Discard changes", danger: true }))) {
        closeButton.focus();
        return;
      }
      close(name);
    }
  }

  return {
    open,
    destroy() {
      disposed = true;
      editor?.destroy();
      editor = null;
    },
  };
}
