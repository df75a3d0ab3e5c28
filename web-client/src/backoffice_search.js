// Conversation search over the back office's inbox: the hub searches the shop's conversations
// (buyer, listing, message text; docs/protocol.md `search`), this box shows the hits in place of
// the inbox list and opens a conversation at the matching message.
import { h, errorWords } from "./ui.js";
import { t } from "./i18n.js";

const DEBOUNCE_MS = 300;
const PAGE = 20;

export class InboxSearch {
  /** `open(convId, seq)` shows a conversation at a message; `inboxList` is hidden while hits show. */
  constructor({ client, open, inboxList, debounceMs = DEBOUNCE_MS }) {
    this.client = client;
    this.open = open;
    this.inboxList = inboxList;
    this.debounceMs = debounceMs;
    this.query = "";
    this.hits = [];
    this.more = false;
    this.note = "";
    this.asked = 0; // replies to older queries are dropped
    this.timer = null;
    this.input = h("input.search", { type: "search", placeholder: t("searchPlaceholder"), "aria-label": t("searchLabel"),
      maxlength: 100, autocomplete: "off" });
    this.status = h("p.search-status", { role: "status" });
    this.list = h("ul.search-results", { "aria-label": t("searchResults") });
    this.el = h("div.search-panel", this.input);
    this.results = h("div.search-box", { hidden: true }, this.status, this.list);
    this.input.addEventListener("input", () => this.typed());
    this.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") this.clear();
    });
    this.list.addEventListener("click", (ev) => {
      const btn = ev.target.closest("button");
      if (!btn) return;
      if (btn.dataset.action === "search-more") this.ask(true);
      else if (btn.dataset.conv) this.pick(btn.dataset.conv);
    });
  }

  typed() {
    clearTimeout(this.timer);
    const q = this.input.value.trim();
    if (!q) return this.clear(false);
    this.timer = setTimeout(() => this.ask(false), this.debounceMs);
  }

  clear(empty = true) {
    clearTimeout(this.timer);
    if (empty) this.input.value = "";
    this.query = "";
    this.hits = [];
    this.asked += 1;
    this.render();
  }

  async ask(next) {
    const q = this.input.value.trim();
    if (!q) return;
    const asked = ++this.asked;
    const last = next ? this.hits[this.hits.length - 1] : null;
    const frame = { type: "search", q, limit: PAGE };
    if (last) Object.assign(frame, { before_ts: last.conversation.updated_at, before_id: last.conversation.id });
    this.query = q;
    this.note = t("searching");
    this.render();
    try {
      const reply = await this.client.request(frame);
      if (asked !== this.asked) return;
      this.hits = next ? [...this.hits, ...reply.results] : reply.results;
      this.more = reply.more;
      this.note = this.hits.length ? "" : t("searchNone", { q });
    } catch (err) {
      if (asked !== this.asked) return;
      this.note = t("searchFailed", { words: errorWords(err) });
    }
    this.render();
  }

  pick(convId) {
    const hit = this.hits.find((x) => x.conversation.id === convId);
    if (!hit) return;
    // A hit may be older than the conversations the inbox has loaded: add it first.
    if (!this.client.conversations.has(convId)) this.client._view(hit.conversation);
    this.open(convId, hit.seqs[0] || null);
  }

  render() {
    const active = !!this.query;
    this.results.hidden = !active;
    this.inboxList.hidden = active;
    this.status.textContent = this.note;
    this.list.replaceChildren(...this.hits.map((hit) => this.row(hit)),
      this.more ? h("li", h("button.btn.search-more", { type: "button", dataset: { action: "search-more" } }, t("searchMore"))) : []);
  }

  row(hit) {
    const v = hit.conversation;
    const tags = hit.fields.filter((f) => f !== "text").map((f) => h("span.match-field", t(f === "buyer" ? "matchBuyer" : "matchListing")));
    return h("li", h("button.conv.search-hit", { type: "button", dataset: { conv: v.id, buyer: v.buyer, seq: hit.seqs[0] || "" } },
      h("div.conv-top", h("b.conv-buyer", v.buyer), tags),
      h("div.conv-listing", v.listing.title),
      hit.snippet ? h("div.search-snippet", marked(hit.snippet, this.query)) : null));
  }
}

/** The snippet with the query's occurrences in <mark> (letters compared without case). */
function marked(text, q) {
  const out = [];
  const low = text.toLowerCase();
  const needle = q.toLowerCase();
  let at = 0;
  for (let i = low.indexOf(needle); needle && i >= 0; i = low.indexOf(needle, at)) {
    out.push(text.slice(at, i), h("mark", text.slice(i, i + needle.length)));
    at = i + needle.length;
  }
  out.push(text.slice(at));
  return out;
}

/** Show message `seq` of the open conversation: load older pages until it is held, then scroll to it. */
export async function revealMessage(client, convId, seq, listEl, render) {
  const conv = client.conversations.get(convId);
  for (let pages = 0; conv && !conv.messages.has(seq) && pages < 20; pages++) {
    if (conv.messages.has(1) || !conv.more) break;
    await client.loadOlder(convId, 100);
  }
  render();
  const row = listEl.querySelector(`[data-seq="${seq}"]`);
  if (!row) return;
  for (const old of listEl.querySelectorAll(".search-target")) old.classList.remove("search-target");
  row.classList.add("search-target");
  row.scrollIntoView({ block: "center" });
}
