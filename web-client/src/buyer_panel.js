// The back office's buyer panel, under the order pane: who the buyer of the selected conversation
// is to the shop, and what the shop noted about them (buyer_notes.js); a short form of the credit
// also goes beside the buyer's name in the conversation's header. The buyer's credit (level,
// positive rate, completed trades, disputes) comes from the hub's `credit` request, asked again
// when another conversation is selected and at most every CREDIT_FRESH_MS for the same buyer.
//
// The panel's element is kept across renders and redraws only its own parts when an answer
// arrives: a full render rebuilds the order pane, and a click on a button that is rebuilt under
// the pointer is lost.
import { h, errorWords } from "./ui.js";
import { t } from "./i18n.js";
import { buyerCreditFacts, levelBadge } from "./credit.js";
import { BuyerNotes } from "./buyer_notes.js";

const CREDIT_FRESH_MS = 60000;

export class BuyerPanel {
  constructor({ client }) {
    this.client = client;
    this.conv = null;
    this.credit = new Map(); // buyer -> { view, at } or { error, at }
    this.asking = new Set();
    this.creditEl = h("div.buyer-credit-box");
    this.badges = new Set(); // header badges drawn, filled in when the credit arrives
    this.notes = new BuyerNotes({ client });
    this.el = h("section.buyer-panel", { "aria-label": t("buyerPanel") }, h("h3", t("buyerCredit")), this.creditEl,
      this.notes.el);
  }

  /** Draw the panel for `conv` (the selected conversation), asking the hub for what is missing. */
  render(conv) {
    this.el.hidden = !conv;
    this.conv = conv;
    if (!conv) return;
    const buyer = conv.view.buyer;
    this.el.dataset.buyer = buyer;
    const known = this.credit.get(buyer);
    if (!known || Date.now() - known.at > CREDIT_FRESH_MS) this.loadCredit(conv);
    const facts = known && known.view ? buyerCreditFacts(known.view)
      : known && known.error ? h("div.buyer-credit.muted", known.error) : buyerCreditFacts(null);
    this.creditEl.replaceChildren(facts);
    this.notes.show(conv);
  }

  /** The short credit beside the buyer's name in the conversation's header. */
  badge(conv) {
    const el = h("span.buyer-credit-badge", { dataset: { buyer: conv.view.buyer } });
    this.fillBadge(el);
    return el;
  }

  fillBadge(el) {
    const known = this.credit.get(el.dataset.buyer);
    const v = known && known.view;
    el.replaceChildren(...(v ? [levelBadge(v.level), " · ", t("creditShort", { trades: v.trades, disputes: v.disputes })] : []));
    el.classList.toggle("disputed", !!(v && v.disputes));
  }

  async loadCredit(conv) {
    const buyer = conv.view.buyer;
    if (this.asking.has(buyer) || this.client.status !== "online") return;
    this.asking.add(buyer);
    try {
      const view = await this.client.request({ type: "credit", conv: conv.id });
      this.credit.set(buyer, { view, at: Date.now() });
    } catch (err) {
      const words = err && err.code === 5002 ? t("creditUnavailable") : errorWords(err);
      this.credit.set(buyer, { error: words, at: Date.now() });
    } finally {
      this.asking.delete(buyer);
    }
    if (this.conv && this.conv.view.buyer === buyer) this.render(this.conv);
    for (const el of document.querySelectorAll(".buyer-credit-badge")) if (el.dataset.buyer === buyer) this.fillBadge(el);
  }
}
