// The back office's quick replies, kept in this browser per shop: a chip inserts its text into
// the draft at the caret (never replacing what the agent typed), and a removed chip can be
// brought back with Undo.
import { h } from "./ui.js";
import { t } from "./i18n.js";

// The starting set, in the back office's language (an agent's own replies are kept as typed).
const defaultQuick = () => [t("quickDefault1"), t("quickDefault2"), t("quickDefault3")];
const UNDO_MS = 10000;

export class QuickReplies {
  constructor({ bar, textarea }) {
    this.bar = bar;
    this.textarea = textarea;
    this.shop = null;
    this.items = [];
    this.removed = null; // {text, index, timer}: the last removal, while it can be undone
  }

  load(shop) {
    this.shop = shop;
    try {
      const saved = JSON.parse(localStorage.getItem(`tradechat:quick:${shop}`) || "null");
      this.items = Array.isArray(saved) ? saved : defaultQuick();
    } catch {
      this.items = defaultQuick();
    }
  }

  save() {
    if (this.shop) localStorage.setItem(`tradechat:quick:${this.shop}`, JSON.stringify(this.items));
    this.render();
  }

  /** Put quick reply `i` into the draft where the caret is, separated from the draft's text. */
  insert(i) {
    const text = this.items[i];
    const ta = this.textarea;
    if (text === undefined) return;
    const start = ta.selectionStart ?? ta.value.length;
    const end = ta.selectionEnd ?? start;
    const before = ta.value.slice(0, start);
    const after = ta.value.slice(end);
    const lead = before && !/\s$/.test(before) ? " " : "";
    const tail = after && !/^\s/.test(after) ? " " : "";
    ta.value = before + lead + text + tail + after;
    const caret = (before + lead + text).length;
    ta.focus();
    ta.setSelectionRange(caret, caret);
    ta.dispatchEvent(new Event("input", { bubbles: true }));
  }

  remove(i) {
    const [text] = this.items.splice(i, 1);
    if (text === undefined) return;
    clearTimeout(this.removed?.timer);
    this.removed = { text, index: i, timer: setTimeout(() => { this.removed = null; this.render(); }, UNDO_MS) };
    this.save();
    this.bar.querySelector("[data-action=quick-undo]")?.focus();
  }

  undo() {
    const r = this.removed;
    if (!r) return;
    clearTimeout(r.timer);
    this.removed = null;
    this.items.splice(Math.min(r.index, this.items.length), 0, r.text);
    this.save();
  }

  /** Save the draft as a new quick reply; false when the draft is empty. */
  add() {
    const text = this.textarea.value.trim();
    if (!text) return false;
    this.items.push(text);
    this.save();
    return true;
  }

  /** Handle a click on one of the bar's buttons; true if it was one. */
  onAction(action, target) {
    const i = Number(target.dataset.index);
    if (action === "quick") this.insert(i);
    else if (action === "quick-remove") this.remove(i);
    else if (action === "quick-undo") this.undo();
    else return false;
    return true;
  }

  render() {
    const undo = this.removed
      ? h("span.quick-undo", { role: "status" }, t("removedQuick", { text: this.removed.text }),
        h("button.link", { type: "button", dataset: { action: "quick-undo" } }, t("undo")))
      : null;
    this.bar.replaceChildren(
      ...this.items.map((text, i) => h("span.chip",
        h("button.chip-text", { type: "button", dataset: { action: "quick", index: i }, title: t("insertReply") }, text),
        h("button.chip-x", { type: "button", dataset: { action: "quick-remove", index: i }, "aria-label": t("removeQuick", { text }) }, "×"))),
      h("button.link", { type: "button", dataset: { action: "quick-add" } }, t("saveQuick")),
      ...(undo ? [undo] : [])); // replaceChildren(null) would write "null"
  }
}
