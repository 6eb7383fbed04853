// The Files tab's text editor: CodeMirror 6 (vendored), loaded only when a file is
// opened. Highlighting by file name (.properties, .json, .yml/.yaml, .toml) through
// classHighlighter's "tok-*" classes, coloured by files.css for both colour schemes.
// Tab is left to the page (focus moves on, no keyboard trap); Ctrl/Cmd+S saves.

import { EditorState } from "../vendor/codemirror/state/index.js";
import {
  EditorView,
  drawSelection,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
} from "../vendor/codemirror/view/index.js";
import { defaultKeymap, history, historyKeymap } from "../vendor/codemirror/commands/index.js";
import { StreamLanguage, bracketMatching, syntaxHighlighting } from "../vendor/codemirror/language/index.js";
import { classHighlighter, tags } from "../vendor/lezer/highlight/index.js";
import { json } from "../vendor/codemirror/lang-json/index.js";
import { yaml } from "../vendor/codemirror/lang-yaml/index.js";
import { properties } from "../vendor/codemirror/legacy-modes/properties.js";
import { toml } from "../vendor/codemirror/legacy-modes/toml.js";

const LANGUAGES = {
  // The mode calls a value "quote": highlighted as the string it is.
  properties: () => StreamLanguage.define({ ...properties, tokenTable: { quote: tags.string } }),
  json: () => json(),
  yml: () => yaml(),
  yaml: () => yaml(),
  toml: () => StreamLanguage.define(toml),
};

/** The name of the highlighting used for ``filename``, or "" for plain text. */
export function languageOf(filename) {
  const ext = filename.includes(".") ? filename.split(".").pop().toLowerCase() : "";
  return ext in LANGUAGES ? ext : "";
}

/**
 * An editor in ``parent`` holding ``text``. ``label``: its accessible name;
 * ``onSave()``: Ctrl/Cmd+S; ``onChange()``: after every edit.
 * Returns ``{text(), focus(), destroy()}``.
 */
export function createEditor(parent, { text, filename, label, onSave, onChange }) {
  const lang = languageOf(filename);
  const extensions = [
    lineNumbers(),
    highlightActiveLineGutter(),
    highlightSpecialChars(),
    history(),
    drawSelection(),
    bracketMatching(),
    highlightActiveLine(),
    syntaxHighlighting(classHighlighter),
    keymap.of([
      {
        key: "Mod-s",
        preventDefault: true,
        run: () => {
          onSave?.();
          return true;
        },
      },
      ...defaultKeymap,
      ...historyKeymap,
    ]),
    EditorView.contentAttributes.of({ "aria-label": label }),
    EditorView.updateListener.of((update) => {
      if (update.docChanged) onChange?.();
    }),
  ];
  if (lang) extensions.push(LANGUAGES[lang]());
  const view = new EditorView({ state: EditorState.create({ doc: text, extensions }), parent });
  return {
    view,
    text: () => view.state.doc.toString(),
    focus: () => view.focus(),
    destroy: () => view.destroy(),
  };
}
