// Payment cards (orders and transfers in the conversation), shared by the widget and the back
// office: the latest state with the actions open to the reader, the deadline that state runs
// against, and the card's timeline built from its card/card_update messages.
import { h, money, clock, dayLabel, duration } from "./ui.js";
import { t } from "./i18n.js";
import { ratingPart } from "./rating.js";
import { AFTER_SALE_STATE_KEYS, AFTER_SALE_DEADLINES, FINAL_ORDER_STATES, orderIsFinal, afterSaleStep, afterSaleLines,
  afterSaleActions, URGENT_STATES } from "./after_sale.js";

// [label, note] keys per order state (the words are in i18n.js).
const ORDER_STATES = Object.fromEntries(["OFFERED:Offer", "CANCELLED:Cancelled", "HELD:Held", "SHIPPED:Shipped",
  "REFUND_REQUESTED:RefundRequested", "REFUND_REFUSED:RefundRefused", "DISPUTED:Disputed", "RELEASED:Released",
  "REFUNDED:Refunded", "RESOLVED:Resolved", ...AFTER_SALE_STATE_KEYS].map((pair) => {
  const [state, key] = pair.split(":");
  return [state, ["os" + key, "os" + key + "Note"]];
}));
const ORDER_STATES_SHOP = {
  OFFERED: "shopOffered",
  HELD: "shopHeld",
  SHIPPED: "shopShipped",
  REFUND_REQUESTED: "shopRefundRequested",
  REFUND_REFUSED: "shopRefundRefused",
  AFTER_SALE_REQUESTED: "shopAfterSaleRequested",
  AFTER_SALE_REFUSED: "shopAfterSaleRefused",
};
// What `deadline_at` means in each state (docs/protocol.md, card), in the reader's words.
const DEADLINE_WORDS = {
  buyer: { OFFERED: "dlBuyerOffered", HELD: "dlBuyerHeld", REFUND_REQUESTED: "dlBuyerRefund", DISPUTED: "dlDisputed",
    ...AFTER_SALE_DEADLINES.buyer },
  agent: { OFFERED: "dlAgentOffered", HELD: "dlAgentHeld", REFUND_REQUESTED: "dlAgentRefund", DISPUTED: "dlDisputed",
    ...AFTER_SALE_DEADLINES.agent },
};
const TRANSFER_STATES = { PENDING: "tsPending", ACCEPTED: "tsAccepted", DECLINED: "tsDeclined", EXPIRED: "tsExpired" };
const stateLabel = (state) => (ORDER_STATES[state] ? t(ORDER_STATES[state][0]) : state);
const transferLabel = (state) => (TRANSFER_STATES[state] ? t(TRANSFER_STATES[state]) : state);
// Final whatever the clock says; a RELEASED order is final once its after-sale period passed (orderIsFinal).
export { FINAL_ORDER_STATES, orderIsFinal, URGENT_STATES };

function button(label, action, card, extra = {}) {
  return h("button.btn" + (extra.primary ? ".primary" : ""), {
    type: "button", dataset: { action, entity: card.id }, ...(extra.attrs || {}),
  }, label);
}

// `key` names the sentence with a {d} for the time left (tickTimers fills it in every second);
// `ended` the words once it has passed when no card update follows (else "Due now: updating…").
function countdown(deadline, key, now, ended) {
  return h("div.card-timer", { dataset: { deadline, words: key, ...(ended ? { ended } : {}) } },
    t(key, { d: duration(deadline - now) }));
}

/** The steps of one card, oldest first, from the card and card_update messages held of it. */
export function cardSteps(conv, id) {
  const steps = [];
  for (const msg of conv.sorted()) {
    if ((msg.kind === "card" || msg.kind === "card_update") && msg.body && msg.body.id === id) {
      steps.push({ seq: msg.seq, ts: msg.ts, state: msg.body.state, action: msg.body.action, view: msg.body.view || {} });
    }
  }
  return steps;
}

function stepWords(step, entity, prev) {
  const v = step.view;
  if (entity === "transfer") return [step.state === "PENDING" ? t("stepSent") : transferLabel(step.state)];
  const label = stateLabel(step.state);
  const afterSale = afterSaleStep(step);
  if (afterSale) return afterSale;
  switch (step.state) {
    case "OFFERED":
      return [prev && prev.state === "OFFERED" ? t("stepPriceChanged") : t("stepOffered"), money(v.amount, v.currency)];
    case "SHIPPED":
      if (step.action === "extended") return [t("stepMoreTime")];
      return [label, v.tracking_note ? t("stepTracking", { note: v.tracking_note }) : ""];
    case "REFUND_REQUESTED":
      return [t("stepRefundAsked"), v.refund_amount ? money(v.refund_amount, v.currency) : "",
        v.refund_reason ? `“${v.refund_reason}”` : ""];
    case "DISPUTED":
      return [t("stepToPlatform"), v.dispute_reason ? `“${v.dispute_reason}”` : ""];
    case "REFUNDED":
      return [label, v.buyer_refund ? money(v.buyer_refund, v.currency) : ""];
    default:
      return [label];
  }
}

function when(ts) {
  const day = dayLabel(ts);
  return day === t("today") ? clock(ts) : `${day} ${clock(ts)}`;
}

function timeline(card, steps) {
  if (!steps || steps.length < 2) return null;
  return h("ol.card-timeline", { "aria-label": t(card.entity === "transfer" ? "historyTransfer" : "historyOrder") },
    steps.map((s, i) => {
      const words = stepWords(s, card.entity, steps[i - 1]).filter(Boolean);
      return h("li", { dataset: { state: s.state } },
        h("time", { datetime: new Date(s.ts).toISOString() }, when(s.ts)), " ",
        h("b", words[0]), words.length > 1 ? " · " + words.slice(1).join(" · ") : "");
    }));
}

/**
 * One payment card (latest state) with the actions open to `role` ("buyer" or "agent"),
 * `me` the user id, `now` the server clock, `steps` its history (see cardSteps).
 */
export function renderCard(card, { role, me, now, steps }) {
  const v = card.view || {};
  if (card.entity === "transfer") {
    // Money moves between accounts: the buyer's own, or the shop's (any agent answers).
    const incoming = v.to_account
      ? (role === "agent" ? v.to_account.startsWith("shop:") : v.to_account === `user:${me}`)
      : v.to_user === me;
    const el = h("div.card.transfer", { dataset: { entity: card.id, state: card.state } },
      h("div.card-title", t(incoming ? "transferToYou" : "transferSent")),
      h("div.card-amount", money(v.amount, v.currency)),
      h("div.card-state", transferLabel(card.state)),
    );
    if (card.state === "PENDING" && v.expires_at) el.append(countdown(v.expires_at, "expiresIn", now));
    const tl = timeline(card, steps);
    if (tl) el.append(tl);
    if (card.state === "PENDING" && incoming) {
      el.append(h("div.card-actions", button(t("accept"), "transfer-accept", card, { primary: true }),
        button(t("decline"), "transfer-decline", card)));
    }
    return el;
  }
  const [label, note] = ORDER_STATES[card.state] ? ORDER_STATES[card.state].map((k) => t(k)) : [card.state, ""];
  const shopNote = role === "agent" && ORDER_STATES_SHOP[card.state] ? t(ORDER_STATES_SHOP[card.state]) : null;
  const el = h("div.card.order", { dataset: { entity: card.id, state: card.state } },
    h("div.card-title", v.title || t("order")),
    h("div.card-line", `${v.quantity || 1} × ${money(v.unit_price, v.currency)}`),
    h("div.card-amount", money(v.amount, v.currency)),
    h("div.card-state", h("span.badge.state-" + String(card.state).toLowerCase(), label), " ", shopNote || note),
  );
  if (v.tracking_note && card.state !== "OFFERED" && card.state !== "HELD") {
    el.append(h("div.card-line", t("trackingLine", { note: v.tracking_note })));
  }
  if (v.refund_amount && ["REFUND_REQUESTED", "REFUND_REFUSED", "DISPUTED"].includes(card.state)) {
    el.append(h("div.card-line", t("refundAskedLine", { amount: money(v.refund_amount, v.currency) }),
      v.refund_reason ? ` (“${v.refund_reason}”)` : ""));
  }
  if (v.dispute_reason && (card.state === "DISPUTED" || card.state === "RESOLVED")) {
    el.append(h("div.card-line.dispute-reason", t("disputeReasonLine", { reason: v.dispute_reason })));
  }
  el.append(...afterSaleLines(card, role));
  const deadlineWords = (DEADLINE_WORDS[role] || DEADLINE_WORDS.buyer)[card.state];
  if (card.state === "RELEASED" && v.deadline_at) {
    // The after-sale period: nothing is posted when it ends, so the card says so itself.
    el.append(v.deadline_at > now ? countdown(v.deadline_at, deadlineWords, now, "afterSaleEnded")
      : h("div.card-line", t("afterSaleEnded")));
  } else if (v.deadline_at && deadlineWords) el.append(countdown(v.deadline_at, deadlineWords, now));
  if (v.auto_confirm_at && (card.state === "SHIPPED" || card.state === "REFUND_REFUSED")) {
    el.append(countdown(v.auto_confirm_at, "autoCompletes", now));
  }
  if (card.state === "RELEASED" && v.settled_by === "timer") el.append(h("div.card-line", t("completedAuto")));
  if (card.state === "REFUNDED" && v.buyer_refund) el.append(h("div.card-line", t("refundedAmount", { amount: money(v.buyer_refund, v.currency) })));
  const tl = timeline(card, steps);
  if (tl) el.append(tl);
  const actions = [];
  if (role === "buyer") {
    if (card.state === "OFFERED") actions.push(button(t("payAmount", { amount: money(v.amount, v.currency) }), "pay", card, { primary: true }));
    if (card.state === "SHIPPED" || card.state === "REFUND_REFUSED") actions.push(button(t("confirmReceipt"), "confirm", card, { primary: true }));
    if (card.state === "SHIPPED" && !v.extended) actions.push(button(t("moreTime"), "extend", card));
    if (card.state === "HELD" || card.state === "SHIPPED") actions.push(button(t("requestRefund"), "refund", card));
    if (card.state === "REFUND_REFUSED") actions.push(button(t("askPlatform"), "dispute", card));
    if (card.state === "RELEASED") el.append(ratingPart(card, me));
  } else if (role === "agent") {
    if (card.state === "OFFERED") actions.push(button(t("changePrice"), "reprice", card));
    if (card.state === "HELD") actions.push(button(t("markShipped"), "ship", card, { primary: true }));
    if (card.state === "REFUND_REQUESTED") {
      actions.push(button(t("acceptRefund"), "refund-accept", card, { primary: true }), button(t("refuse"), "refund-refuse", card));
    }
    if (card.state === "REFUND_REFUSED") actions.push(button(t("askPlatform"), "dispute", card));
  }
  // Either side may withdraw an offer nobody has paid (an arbiter reads, never acts here).
  if (card.state === "OFFERED" && role !== "arbiter") actions.push(button(t("cancelOffer"), "cancel", card));
  actions.push(...afterSaleActions(card, role, now, button));
  if (actions.length) el.append(h("div.card-actions", actions));
  return el;
}

/** Refresh every countdown under `root` (call once a second). */
export function tickTimers(root, now) {
  for (const el of root.querySelectorAll("[data-deadline]")) {
    const left = Number(el.dataset.deadline) - now;
    el.textContent = left > 0 ? t(el.dataset.words, { d: duration(left) }) : t(el.dataset.ended || "dueNow");
  }
}

/** Short description of a message for lists and notifications. */
export function preview(msg) {
  if (!msg) return "";
  if (msg.recalled) return t("pvRecalled");
  switch (msg.kind) {
    case "text": return msg.body.text;
    case "image": return t("pvPicture");
    case "product": return t("pvProduct") + " " + (msg.body.listing ? msg.body.listing.title : "");
    case "card":
    case "card_update": {
      const v = msg.body.view || {};
      const what = t(msg.body.entity === "transfer" ? "pvTransfer" : "pvOrder");
      const label = ORDER_STATES[msg.body.state] ? stateLabel(msg.body.state) : transferLabel(msg.body.state);
      return `[${what}] ${label} ${money(v.amount, v.currency)}`;
    }
    case "system": return msg.body.text || "";
    case "recall": return t("pvRecalled");
    default: return t("pvMessage");
  }
}

/** A short order summary for the back office's side pane. */
export function orderStateLabel(state) {
  return stateLabel(state);
}
