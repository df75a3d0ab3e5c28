// Payment cards (orders and transfers in the conversation), shared by the widget and the back
// office: the latest state with the actions open to the reader, the deadline that state runs
// against, and the card's timeline built from its card/card_update messages.
import { h, money, clock, dayLabel, duration } from "./ui.js";

const ORDER_STATES = {
  OFFERED: ["Offer", "waiting for payment"],
  CANCELLED: ["Cancelled", "this offer was withdrawn"],
  HELD: ["Paid", "the money is held safely until you confirm receipt"],
  SHIPPED: ["Shipped", "confirm receipt when it arrives"],
  REFUND_REQUESTED: ["Refund requested", "waiting for the shop's answer"],
  REFUND_REFUSED: ["Refund refused", "you can confirm receipt or ask the platform to decide"],
  DISPUTED: ["With the platform", "an arbiter will decide"],
  RELEASED: ["Completed", "the money was paid to the shop"],
  REFUNDED: ["Refunded", "the money went back to the buyer"],
  RESOLVED: ["Resolved", "settled by the platform"],
};
const ORDER_STATES_SHOP = {
  OFFERED: "waiting for the buyer to pay",
  HELD: "paid into escrow: ship it",
  SHIPPED: "the buyer confirms receipt, or it completes automatically",
  REFUND_REQUESTED: "the buyer asks for money back: answer it",
  REFUND_REFUSED: "the buyer may confirm or ask the platform",
};
// What `deadline_at` means in each state (docs/protocol.md, card), in the reader's words.
const DEADLINE_WORDS = {
  buyer: {
    OFFERED: "Pay within ",
    HELD: "The shop ships within ",
    REFUND_REQUESTED: "The shop answers your refund request within ",
    DISPUTED: "The platform decides within ",
  },
  agent: {
    OFFERED: "The buyer pays within ",
    HELD: "Ship within ",
    REFUND_REQUESTED: "Answer the refund request within ",
    DISPUTED: "The platform decides within ",
  },
};
const TRANSFER_STATES = {
  PENDING: "Waiting to be accepted",
  ACCEPTED: "Accepted",
  DECLINED: "Declined, returned to the sender",
  EXPIRED: "Expired, returned to the sender",
};
export const FINAL_ORDER_STATES = new Set(["CANCELLED", "RELEASED", "REFUNDED", "RESOLVED"]);

function button(label, action, card, extra = {}) {
  return h("button.btn" + (extra.primary ? ".primary" : ""), {
    type: "button", dataset: { action, entity: card.id }, ...(extra.attrs || {}),
  }, label);
}

function countdown(deadline, prefix, now) {
  return h("div.card-timer", { dataset: { deadline, prefix } }, prefix + duration(deadline - now));
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
  if (entity === "transfer") return [step.state === "PENDING" ? "Sent" : TRANSFER_STATES[step.state] || step.state];
  const label = (ORDER_STATES[step.state] || [step.state])[0];
  switch (step.state) {
    case "OFFERED":
      return [prev && prev.state === "OFFERED" ? "Price changed" : "Offered", money(v.amount, v.currency)];
    case "SHIPPED":
      if (step.action === "extended") return ["More time to confirm"];
      return [label, v.tracking_note ? `tracking ${v.tracking_note}` : ""];
    case "REFUND_REQUESTED":
      return ["Refund asked", v.refund_amount ? money(v.refund_amount, v.currency) : "",
        v.refund_reason ? `“${v.refund_reason}”` : ""];
    case "DISPUTED":
      return ["Sent to the platform", v.dispute_reason ? `“${v.dispute_reason}”` : ""];
    case "REFUNDED":
      return [label, v.buyer_refund ? money(v.buyer_refund, v.currency) : ""];
    default:
      return [label];
  }
}

function when(ts) {
  const day = dayLabel(ts);
  return day === "Today" ? clock(ts) : `${day} ${clock(ts)}`;
}

function timeline(card, steps) {
  if (!steps || steps.length < 2) return null;
  return h("ol.card-timeline", { "aria-label": "History of this " + (card.entity === "transfer" ? "transfer" : "order") },
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
      h("div.card-title", incoming ? "Transfer to you" : "Transfer sent"),
      h("div.card-amount", money(v.amount, v.currency)),
      h("div.card-state", TRANSFER_STATES[card.state] || card.state),
    );
    if (card.state === "PENDING" && v.expires_at) el.append(countdown(v.expires_at, "Expires in ", now));
    const tl = timeline(card, steps);
    if (tl) el.append(tl);
    if (card.state === "PENDING" && incoming) {
      el.append(h("div.card-actions", button("Accept", "transfer-accept", card, { primary: true }),
        button("Decline", "transfer-decline", card)));
    }
    return el;
  }
  const [label, note] = ORDER_STATES[card.state] || [card.state, ""];
  const shopNote = role === "agent" ? ORDER_STATES_SHOP[card.state] : null;
  const el = h("div.card.order", { dataset: { entity: card.id, state: card.state } },
    h("div.card-title", v.title || "Order"),
    h("div.card-line", `${v.quantity || 1} × ${money(v.unit_price, v.currency)}`),
    h("div.card-amount", money(v.amount, v.currency)),
    h("div.card-state", h("span.badge.state-" + String(card.state).toLowerCase(), label), " ", shopNote || note),
  );
  if (v.tracking_note && card.state !== "OFFERED" && card.state !== "HELD") {
    el.append(h("div.card-line", "Tracking: ", v.tracking_note));
  }
  if (v.refund_amount && ["REFUND_REQUESTED", "REFUND_REFUSED", "DISPUTED"].includes(card.state)) {
    el.append(h("div.card-line", `Refund asked: ${money(v.refund_amount, v.currency)}`,
      v.refund_reason ? ` (“${v.refund_reason}”)` : ""));
  }
  if (v.dispute_reason && (card.state === "DISPUTED" || card.state === "RESOLVED")) {
    el.append(h("div.card-line.dispute-reason", "Reason given to the platform: “", v.dispute_reason, "”"));
  }
  const deadlineWords = (DEADLINE_WORDS[role] || DEADLINE_WORDS.buyer)[card.state];
  if (v.deadline_at && deadlineWords) el.append(countdown(v.deadline_at, deadlineWords, now));
  if (v.auto_confirm_at && (card.state === "SHIPPED" || card.state === "REFUND_REFUSED")) {
    el.append(countdown(v.auto_confirm_at, "Completes automatically in ", now));
  }
  if (card.state === "RELEASED" && v.settled_by === "timer") el.append(h("div.card-line", "Completed automatically."));
  if (card.state === "REFUNDED" && v.buyer_refund) el.append(h("div.card-line", `Refunded ${money(v.buyer_refund, v.currency)}`));
  const tl = timeline(card, steps);
  if (tl) el.append(tl);
  const actions = [];
  if (role === "buyer") {
    if (card.state === "OFFERED") actions.push(button(`Pay ${money(v.amount, v.currency)}`, "pay", card, { primary: true }));
    if (card.state === "SHIPPED" || card.state === "REFUND_REFUSED") actions.push(button("Confirm receipt", "confirm", card, { primary: true }));
    if (card.state === "SHIPPED" && !v.extended) actions.push(button("More time", "extend", card));
    if (card.state === "HELD" || card.state === "SHIPPED") actions.push(button("Request refund", "refund", card));
    if (card.state === "REFUND_REFUSED") actions.push(button("Ask the platform", "dispute", card));
  } else if (role === "agent") {
    if (card.state === "OFFERED") actions.push(button("Change price", "reprice", card));
    if (card.state === "HELD") actions.push(button("Mark shipped", "ship", card, { primary: true }));
    if (card.state === "REFUND_REQUESTED") {
      actions.push(button("Accept refund", "refund-accept", card, { primary: true }), button("Refuse", "refund-refuse", card));
    }
    if (card.state === "REFUND_REFUSED") actions.push(button("Ask the platform", "dispute", card));
  }
  // Either side may withdraw an offer nobody has paid.
  if (card.state === "OFFERED") actions.push(button("Cancel offer", "cancel", card));
  if (actions.length) el.append(h("div.card-actions", actions));
  return el;
}

/** Refresh every countdown under `root` (call once a second). */
export function tickTimers(root, now) {
  for (const el of root.querySelectorAll("[data-deadline]")) {
    const left = Number(el.dataset.deadline) - now;
    el.textContent = left > 0 ? el.dataset.prefix + duration(left) : "Due now: updating…";
  }
}

/** Short description of a message for lists and notifications. */
export function preview(msg) {
  if (!msg) return "";
  if (msg.recalled) return "Message recalled";
  switch (msg.kind) {
    case "text": return msg.body.text;
    case "image": return "[Picture]";
    case "product": return "[Product] " + (msg.body.listing ? msg.body.listing.title : "");
    case "card":
    case "card_update": {
      const v = msg.body.view || {};
      const what = msg.body.entity === "transfer" ? "Transfer" : "Order";
      return `[${what}] ${(ORDER_STATES[msg.body.state] || [TRANSFER_STATES[msg.body.state] || msg.body.state])[0]} ${money(v.amount, v.currency)}`;
    }
    case "system": return msg.body.text || "";
    case "recall": return "Message recalled";
    default: return "[Message]";
  }
}

/** A short order summary for the back office's side pane. */
export function orderStateLabel(state) {
  return (ORDER_STATES[state] || [state])[0];
}
