// After-sale refunds (售后) on the payment cards, for the widget, the back office and the desk:
// which states are final, what `deadline_at` means after the release, the claim's lines and
// timeline steps, the buttons (the buyer claims or asks the platform, the shop pays or refuses),
// and their dialogs. Each dialog makes its idempotency key once and reuses it on every retry.
// The pure functions (no DOM) are tested under node (test/after_sale.test.js).
import { h, money, parseMoney, modal, wordsError } from "./ui.js";
import { randomId } from "./protocol.js";
import { t, currencyDigits } from "./i18n.js";

/** [state, i18n stem] of the after-sale states (cards.js makes "os"+stem and "os"+stem+"Note"). */
export const AFTER_SALE_STATE_KEYS = ["AFTER_SALE_REQUESTED:AfterSaleRequested", "AFTER_SALE_REFUSED:AfterSaleRefused",
  "AFTER_SALE_DISPUTED:AfterSaleDisputed", "AFTER_SALE_REFUNDED:AfterSaleRefunded", "AFTER_SALE_CLOSED:AfterSaleClosed",
  "AFTER_SALE_RESOLVED:AfterSaleResolved"];
export const AFTER_SALE_STATES = new Set(AFTER_SALE_STATE_KEYS.map((pair) => pair.split(":")[0]));

/** States after which nothing changes any more. RELEASED is not one: see orderIsFinal. */
export const FINAL_ORDER_STATES = new Set(["CANCELLED", "REFUNDED", "RESOLVED", "AFTER_SALE_REFUNDED",
  "AFTER_SALE_CLOSED", "AFTER_SALE_RESOLVED"]);

/** Whether an order can still change: a released order is final once its after-sale period passed
 * (a release without `deadline_at` never takes a claim). */
export function orderIsFinal(state, view, now) {
  if (FINAL_ORDER_STATES.has(state)) return true;
  if (state !== "RELEASED") return false;
  return !(view && Number.isFinite(view.deadline_at) && view.deadline_at > now);
}

/** The most a buyer may claim back after the release: what was paid, less refunds. */
export function claimable(view) {
  return Math.max(0, (view.amount || 0) - (view.buyer_refund || 0));
}

/** Whether the buyer may claim an after-sale refund now. */
export function canClaim(state, view, now) {
  return state === "RELEASED" && !orderIsFinal(state, view, now) && claimable(view) > 0;
}

/** The claim dialog's fields to an `after_sale` frame's amount and reason, or our words why not. */
export function checkClaim({ amount, reason }, view) {
  const most = claimable(view);
  const minor = parseMoney(amount || "", view.currency);
  if (!minor || minor > most) throw wordsError(t("claimRange", { amount: money(most, view.currency) }));
  const why = String(reason || "").trim();
  if (!why) throw wordsError(t("sayWhatWrong"));
  return { amount: minor, reason: why.slice(0, 500) };
}

/** An arbiter's "pay part" of a claim: above zero and below the claim, or our words why not. */
export function checkPart(text, claim, currency) {
  const part = parseMoney(text || "", currency);
  if (!part || part >= claim) throw wordsError(t("arbSplitRange", { amount: money(claim, currency) }));
  return part;
}

/** States waiting for the shop's answer, with the back office inbox's words for them (most urgent first). */
export const URGENT_STATES = { REFUND_REQUESTED: "refundUrgent", AFTER_SALE_REQUESTED: "afterSaleUrgent" };

/** What `deadline_at` means after the release, per reader (cards.js merges it into its table). */
export const AFTER_SALE_DEADLINES = {
  buyer: { RELEASED: "dlBuyerAfterSale", AFTER_SALE_REQUESTED: "dlBuyerClaim", AFTER_SALE_REFUSED: "dlBuyerClaimRefused",
    AFTER_SALE_DISPUTED: "dlDisputed" },
  agent: { RELEASED: "dlAgentAfterSale", AFTER_SALE_REQUESTED: "dlAgentClaim", AFTER_SALE_REFUSED: "dlAgentClaimRefused",
    AFTER_SALE_DISPUTED: "dlDisputed" },
};

/** Timeline words of an after-sale step (null: not one). */
export function afterSaleStep(step) {
  const v = step.view;
  const quote = (text) => (text ? `“${text}”` : "");
  switch (step.state) {
    case "AFTER_SALE_REQUESTED":
      return [t("stepClaimed"), v.after_sale_amount ? money(v.after_sale_amount, v.currency) : "", quote(v.after_sale_reason)];
    case "AFTER_SALE_REFUSED":
      return [t("stepClaimRefused")];
    case "AFTER_SALE_DISPUTED":
      if (step.action === "after_sale_escalated") return [t("stepClaimEscalated")];
      return [t("stepToPlatform"), quote(v.dispute_reason)];
    case "AFTER_SALE_REFUNDED":
      return [t("stepClaimPaid"), money(v.after_sale_refund || 0, v.currency)];
    case "AFTER_SALE_CLOSED":
      return [t("stepClaimClosed")];
    case "AFTER_SALE_RESOLVED":
      return [t("stepClaimDecided"), v.after_sale_refund ? money(v.after_sale_refund, v.currency) : t("arbKeep")];
    default:
      return null;
  }
}

/** The card's lines about a claim: amount and reason, then what was paid (and, for the shop,
 * the part its deposit paid), or that the platform kept the money with the shop. */
export function afterSaleLines(card, role) {
  const v = card.view || {};
  const lines = [];
  if (!AFTER_SALE_STATES.has(card.state)) return lines;
  if (v.after_sale_amount) {
    lines.push(h("div.card-line.claim", t("claimLine", { amount: money(v.after_sale_amount, v.currency) }),
      v.after_sale_reason ? ` (“${v.after_sale_reason}”)` : ""));
  }
  if (v.after_sale_refund) {
    const fromDeposit = role !== "buyer" && v.after_sale_from_deposit
      ? " · " + t("claimFromDeposit", { amount: money(v.after_sale_from_deposit, v.currency) }) : "";
    lines.push(h("div.card-line.claim-paid", t("claimPaidLine", { amount: money(v.after_sale_refund, v.currency) }), fromDeposit));
  } else if (card.state === "AFTER_SALE_RESOLVED") {
    lines.push(h("div.card-line.claim-paid", t("claimKept")));
  }
  if (v.dispute_reason && (card.state === "AFTER_SALE_DISPUTED" || card.state === "AFTER_SALE_RESOLVED")) {
    lines.push(h("div.card-line.dispute-reason", t("disputeReasonLine", { reason: v.dispute_reason })));
  }
  return lines;
}

/** The after-sale buttons open to `role` (`button(label, action, card, extra)` from cards.js). */
export function afterSaleActions(card, role, now, button) {
  const v = card.view || {};
  const open = v.deadline_at && v.deadline_at > now;
  if (role === "buyer") {
    if (canClaim(card.state, v, now)) return [button(t("claimAfterSale"), "after-sale", card)];
    if (card.state === "AFTER_SALE_REFUSED" && open) return [button(t("askPlatformDecide"), "after-sale-dispute", card, { primary: true })];
  } else if (role === "agent" && card.state === "AFTER_SALE_REQUESTED") {
    return [button(t("payClaim"), "after-sale-accept", card, { primary: true }), button(t("refuse"), "after-sale-refuse", card)];
  }
  return [];
}

/** Whether `action` (a button's data-action) is one of this module's dialogs. */
export const isAfterSaleAction = (action) => typeof action === "string" && action.startsWith("after-sale");

/** The dialog behind an after-sale button; resolves with the `payment` reply, or null if cancelled. */
export async function afterSaleDialog(action, { client, conv, card, host, say = () => {} }) {
  const v = card.view;
  const key = randomId("after_sale").slice(0, 40); // one key per dialog, reused on every retry
  const run = (extra) => client.money({ conv: conv.id, order: card.id, key, ...extra });
  let done = null;
  if (action === "after-sale") {
    const most = claimable(v);
    const digits = currencyDigits(v.currency);
    done = await modal(host, {
      title: t("claimTitle"), text: t("claimText", { amount: money(most, v.currency) }),
      fields: [
        { name: "amount", label: t("claimAmountLabel", { currency: v.currency }), inputmode: "decimal",
          value: (most / 10 ** digits).toFixed(digits) },
        { name: "reason", label: t("whatWrong"), type: "textarea", maxlength: 500 },
      ],
      submit: t("sendRequest"),
      onSubmit: (values) => run({ type: "after_sale", ...checkClaim(values, v) }),
    });
    if (done) say(t("claimSent"), true);
  } else if (action === "after-sale-dispute") {
    done = await modal(host, {
      title: t("disputeTitle"), text: t("claimDisputeText"),
      fields: [{ name: "reason", label: t("why"), type: "textarea", maxlength: 500 }], submit: t("askPlatform"),
      onSubmit: ({ reason }) => {
        if (!reason.trim()) throw wordsError(t("sayWhyPlatform"));
        return run({ type: "dispute", reason: reason.trim() });
      },
    });
    if (done) say(t("claimDisputeSent"), true);
  } else if (action === "after-sale-accept" || action === "after-sale-refuse") {
    const accept = action === "after-sale-accept";
    done = await modal(host, {
      title: t(accept ? "payClaimQ" : "refuseClaimQ"),
      text: accept ? t("payClaimText", { amount: money(v.after_sale_amount || 0, v.currency) }) : t("refuseClaimText"),
      submit: t(accept ? "payClaim" : "refuse"), onSubmit: () => run({ type: "after_sale_answer", accept }),
    });
  }
  return done;
}
