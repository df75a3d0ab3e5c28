// The back office's followers panel: the shop's follower count, who follows, and the composer
// of a message to every follower (text, the selected conversation's listing, a follower price
// valid for some hours), with the latest broadcast's progress. Wire protocol: `followers`,
// `broadcast`, `broadcasts` (docs/protocol.md).
import { h, money, parseMoney, errorWords } from "./ui.js";
import { t, formatDateTime } from "./i18n.js";

const REFRESH_MS = 30_000;

export class FollowersPanel {
  /** `selected()`: the conversation open in the back office (its listing can be attached). */
  constructor({ client, selected }) {
    this.client = client;
    this.selected = selected;
    this.count = null;
    this.list = null;
    this.latest = null;
    this.note = "";
    this.sending = false;
    this.sentNote = false;
    this.countEl = h("span.follower-count");
    this.listEl = h("ul.follower-list");
    this.details = h("details.followers-who", h("summary", t("showFollowers")), this.listEl);
    this.details.addEventListener("toggle", () => {
      if (this.details.open) this.refresh(true);
    });
    this.text = h("textarea", { name: "text", rows: 2, maxlength: 1000, "aria-label": t("broadcastText"),
      placeholder: t("broadcastText") });
    this.attach = h("input", { type: "checkbox", name: "listing" });
    this.price = h("input", { name: "price", inputmode: "decimal", "aria-label": t("broadcastPrice"), placeholder: t("broadcastPrice") });
    this.hours = h("input", { name: "hours", type: "number", min: 1, max: 720, value: 48, "aria-label": t("broadcastHours") });
    this.progress = h("div.broadcast-progress.muted", { "aria-live": "polite" });
    this.form = h("form.broadcast-form",
      h("h4", t("broadcastTitle")),
      this.text,
      h("label.check", this.attach, " " + t("broadcastListing")),
      h("div.offer-row", h("label.field", h("span", t("broadcastPrice")), this.price),
        h("label.field", h("span", t("broadcastHours")), this.hours)),
      h("button.btn.primary", { type: "submit" }, t("broadcastSend")),
      this.progress);
    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.send();
    });
    this.el = h("section.followers-panel", { "aria-label": t("followersTitle") },
      h("h3.followers-title", t("followersTitle"), " ", this.countEl), this.details, this.form);
    client.addEventListener("status", () => {
      if (client.status === "online") this.refresh(false);
    });
    setInterval(() => {
      if (client.status === "online" && !document.hidden) this.refresh(this.details.open);
    }, REFRESH_MS);
  }

  async refresh(withList) {
    try {
      const page = await this.client.request({ type: "followers", limit: withList ? 200 : 1 });
      this.count = page.count;
      if (withList) this.list = page.followers;
      const jobs = await this.client.request({ type: "broadcasts", limit: 1 });
      this.latest = jobs.broadcasts[0] || null;
      if (this.latest && this.latest.done && this.sentNote) {
        this.note = ""; // "delivering…" is over: the progress line says how it ended
        this.sentNote = false;
      }
      if (this.latest && !this.latest.done) setTimeout(() => this.refresh(false), 1000);
    } catch {
      /* offline: keep what is shown; the next refresh tries again */
    }
    this.render();
  }

  async send() {
    if (this.sending) return;
    const conv = this.selected();
    const frame = { type: "broadcast", key: "bc-" + crypto.randomUUID() };
    const text = this.text.value.trim();
    if (text) frame.text = text;
    if (this.attach.checked && conv) {
      const { id, title, price, currency, image } = conv.view.listing;
      frame.listing = { id, title, price, currency, ...(image ? { image } : {}) };
      const offer = this.price.value.trim() ? parseMoney(this.price.value, currency) : null;
      if (offer) frame.offer = { price: offer, currency, valid_hours: Math.max(1, Math.min(720, Number(this.hours.value) || 48)) };
    }
    if (!frame.text && !frame.listing) {
      this.note = t("broadcastNeedsText");
      this.render();
      return;
    }
    this.sending = true;
    try {
      const reply = await this.client.request(frame);
      this.latest = reply.broadcast;
      this.note = t("broadcastSent", { n: reply.broadcast.total });
      this.sentNote = true;
      this.text.value = "";
      this.price.value = "";
      setTimeout(() => this.refresh(false), 500);
    } catch (err) {
      this.note = errorWords(err);
    } finally {
      this.sending = false;
      this.render();
    }
  }

  render() {
    const n = this.count;
    this.countEl.textContent = n === null ? "" : n === 1 ? t("followerCount1") : t("followerCount", { n });
    if (this.list) {
      this.listEl.replaceChildren(...this.list.map((f) => h("li", h("b", f.buyer), " · ", formatDateTime(f.since),
        f.blocked ? h("span.muted", ` · ${t("followerBlocked")}`) : null)));
    }
    const conv = this.selected();
    this.attach.disabled = !conv;
    const job = this.latest;
    const lines = [];
    if (this.note) lines.push(this.note);
    if (job) {
      lines.push(job.done ? t("broadcastDone", { done: job.delivered })
        : t("broadcastProgress", { done: job.delivered, total: job.total }));
      if (job.body.offer) lines.push(money(job.body.offer.price, job.body.offer.currency));
    }
    this.progress.textContent = lines.join(" · ");
  }
}
