// Credit where the decision is made: the shop's level, positive rate and typical reply time in the
// widget's header and on its product card, and the buyer's level, trades and disputes in the back
// office. Levels are the hub's strings ("3 hearts", "1 diamond", "2 crowns": payments/ratings.py),
// drawn as that many hearts, diamonds or crowns.
import { h, duration } from "./ui.js";
import { t } from "./i18n.js";

const SYMBOLS = { heart: "♥", diamond: "◆", crown: "♛" };

/** "3 hearts" -> { n: 3, kind: "heart" }; null for no level (or one we do not know). */
export function levelParts(level) {
  const m = /^([1-5]) (heart|diamond|crown)s?$/.exec(level || "");
  return m ? { n: Number(m[1]), kind: m[2] } : null;
}

/** The level in words of the current language ("3 颗心"), or "no level yet". */
export function levelWords(level) {
  const p = levelParts(level);
  return p ? t(`credit_${p.kind}`, { n: p.n }) : t("creditNoLevel");
}

/** The level drawn as symbols, with its words for screen readers and as a tooltip. */
export function levelBadge(level) {
  const p = levelParts(level);
  const words = levelWords(level);
  if (!p) return h("span.credit-level.none", words);
  return h(`span.credit-level.level-${p.kind}`, { role: "img", "aria-label": words, title: words, dataset: { level } },
    SYMBOLS[p.kind].repeat(p.n));
}

/** 9830 basis points -> "98.3%", 10000 -> "100%". */
export function percent(bps) {
  return `${(bps / 100).toFixed(1).replace(/\.0$/, "")}%`;
}

function rateLine(credit) {
  return credit.positive_rate_bps === null || credit.positive_rate_bps === undefined
    ? null : h("span.credit-rate", t("creditPositive", { rate: percent(credit.positive_rate_bps) }));
}

/** The shop's credit for the widget's header: level and positive rate, or "no ratings yet". */
export function shopCreditLine(credit) {
  if (!credit) return [];
  if (!credit.ratings) return [h("span.credit-new", t("creditNoRatings"))];
  return [levelBadge(credit.level), rateLine(credit)].filter(Boolean);
}

/**
 * Fill the widget's credit places from the public presence (`credit` may be null: payments off,
 * or not fetched yet): the header line, and the line under the product card's price.
 */
export function renderShopCredit(panel, credit, typicalMs) {
  const head = panel.querySelector(".head .shop-credit");
  if (head) {
    const parts = shopCreditLine(credit);
    head.replaceChildren(...parts);
    head.hidden = !parts.length;
  }
  const text = panel.querySelector(".panel > .product .product-text");
  if (!text) return;
  let line = text.querySelector(".product-credit");
  if (!line) {
    line = h("div.product-credit");
    text.append(line);
  }
  const parts = shopCreditLine(credit);
  if (credit && credit.ratings) parts.push(h("span.credit-count", t("creditRatings", { n: credit.ratings })));
  if (typicalMs) parts.push(h("span.credit-reply", t("creditReplies", { d: duration(typicalMs) })));
  line.replaceChildren(...parts.flatMap((p, i) => (i ? [" · ", p] : [p])));
  line.hidden = !parts.length;
}

/** The buyer's credit and trade record for the back office (the hub's `credit` reply). */
export function buyerCreditFacts(view) {
  if (!view) return h("div.buyer-credit.muted", t("creditLoading"));
  return h("div.buyer-credit",
    h("div.credit-row", levelBadge(view.level), rateLine(view)),
    h("div.credit-row",
      h("span.credit-trades", t("creditTrades", { n: view.trades })), " · ",
      h("span.credit-disputes" + (view.disputes ? ".some" : ""), t("creditDisputes", { n: view.disputes })),
      view.disputes_lost ? h("span.credit-lost", " ", t("creditDisputesLost", { n: view.disputes_lost })) : null, " · ",
      h("span.credit-count", t("creditRatings", { n: view.ratings }))));
}
