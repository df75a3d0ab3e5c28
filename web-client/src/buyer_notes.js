// The shop's private note and tags on a buyer, in the back office's buyer panel. Every agent of the
// shop sees and edits the same profile; who saved it last is shown. A colleague's save arrives as a
// pushed `buyer_profile`: it replaces what is shown unless this agent has typed something, in
// which case the draft stays and a line says a newer version exists. Saving over a version someone
// else replaced is refused by the hub (4010) with the current profile: it is shown beside the draft,
// and saving again replaces it on purpose.
import { h, errorWords, wordsError } from "./ui.js";
import { t, formatDateTime } from "./i18n.js";

const MAX_TAGS = 20;
const MAX_TAG = 20;

/** "VIP, 回头客，包邮" -> ["VIP", "回头客", "包邮"]: commas of either width or 、 separate tags. */
export function parseTags(text) {
  const tags = [];
  for (const raw of String(text || "").split(/[,，、\n]/)) {
    const tag = raw.trim();
    if (tag && !tags.includes(tag)) tags.push(tag);
  }
  if (tags.length > MAX_TAGS) throw wordsError(t("tooManyTags", { n: MAX_TAGS }));
  if (tags.some((tag) => tag.length > MAX_TAG)) throw wordsError(t("tagTooLong", { n: MAX_TAG }));
  return tags;
}

function profileWords(p) {
  return [p.note, p.tags.length ? `[${p.tags.join(", ")}]` : ""].filter(Boolean).join(" ") || t("notesEmpty");
}

export class BuyerNotes {
  constructor({ client }) {
    this.client = client;
    this.profiles = new Map(); // buyer -> the latest profile frame seen
    this.buyer = null;
    this.conv = null;
    this.base = 0; // the version the shown draft started from
    this.dirty = false;
    this.note = h("textarea", { name: "note", rows: 3, maxlength: 2000, placeholder: t("notesPlaceholder") });
    this.tags = h("input", { name: "tags", type: "text", maxlength: 440, placeholder: t("tagsPlaceholder") });
    this.chips = h("div.buyer-tags");
    this.meta = h("div.notes-meta.muted");
    this.notice = h("div.notes-notice", { role: "status", hidden: true });
    this.save = h("button.btn.primary.small", { type: "submit" }, t("saveNotes"));
    this.el = h("form.buyer-notes",
      h("h3", t("notesTitle")), this.chips,
      h("label.field", h("span", t("notesLabel")), this.note),
      h("label.field", h("span", t("tagsLabel")), this.tags),
      this.notice, h("div.notes-row", this.meta, this.save));
    for (const input of [this.note, this.tags]) input.addEventListener("input", () => { this.dirty = true; });
    this.el.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.submit();
    });
    client.addEventListener("frame", (ev) => this.onFrame(ev.detail));
  }

  /** Show the notes on the buyer of `conv`, asking the hub the first time. */
  show(conv) {
    if (conv.view.buyer !== this.buyer) {
      this.buyer = conv.view.buyer;
      this.dirty = false;
      this.notice.hidden = true;
      const known = this.profiles.get(this.buyer);
      this.fill(known || { note: "", tags: [], version: 0, updated_by: null, updated_at: null });
      if (!known) this.load(conv);
    }
    this.conv = conv;
  }

  async load(conv) {
    if (this.client.status !== "online") return;
    try {
      this.remember(await this.client.request({ type: "buyer_profile", conv: conv.id }));
    } catch {
      /* offline: the next selection asks again */
    }
  }

  fill(p) {
    this.base = p.version;
    this.note.value = p.note;
    this.tags.value = p.tags.join(", ");
    this.dirty = false;
    this.renderSaved(p);
  }

  renderSaved(p) {
    this.chips.replaceChildren(...p.tags.map((tag) => h("span.tag", tag)));
    this.chips.hidden = !p.tags.length;
    this.meta.textContent = p.updated_by ? t("notesLastBy", { agent: p.updated_by, when: formatDateTime(p.updated_at) }) : t("notesPrivate");
  }

  /** A profile from the hub (reply or push): kept, and shown unless it would wipe a draft. */
  remember(p) {
    const known = this.profiles.get(p.buyer);
    if (known && known.version > p.version) return;
    this.profiles.set(p.buyer, p);
    if (p.buyer !== this.buyer) return;
    if (!this.dirty || p.version === this.base) this.fill(p);
    else if (p.version > this.base) {
      this.notice.textContent = t("notesNewer", { agent: p.updated_by, words: profileWords(p) });
      this.notice.hidden = false;
    }
  }

  onFrame(frame) {
    if (frame.type === "buyer_profile" && this.client.me && frame.shop === this.client.me.shop) this.remember(frame);
  }

  async submit() {
    const conv = this.conv;
    if (!conv) return;
    this.save.disabled = true;
    try {
      const tags = parseTags(this.tags.value);
      const saved = await this.client.request({ type: "edit_buyer_profile", conv: conv.id, version: this.base,
        note: this.note.value.trim(), tags });
      this.dirty = false;
      this.notice.hidden = true;
      this.remember(saved);
      this.fill(saved);
    } catch (err) {
      if (err.code === 4010 && err.details) {
        // Someone saved first: keep this draft, show theirs, and let a second save replace it.
        const current = err.details;
        this.profiles.set(current.buyer, current);
        this.base = current.version;
        this.renderSaved(current);
        this.notice.textContent = t("notesConflict", { agent: current.updated_by, words: profileWords(current) });
      } else {
        this.notice.textContent = err.words || errorWords(err);
      }
      this.notice.hidden = false;
    } finally {
      this.save.disabled = false;
    }
  }
}
