// Shared rendering for the widget and the back office: DOM helpers (text is always set as
// text, never parsed as HTML), money and time formatting, payment cards, and errors in words.

/** h("div.cls", {attr}, ...children): build an element; strings become text nodes. */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SYMBOLS = { CNY: "¥", USD: "$", EUR: "€", GBP: "£", JPY: "¥", HKD: "HK$" };
const ZERO_DECIMALS = new Set(["JPY", "KRW"]);

/** Minor units to a price: 12800 CNY -> "¥128.00". */
export function money(amount, currency) {
  const digits = ZERO_DECIMALS.has(currency) ? 0 : 2;
  const value = (amount / 10 ** digits).toFixed(digits).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (SYMBOLS[currency] || currency + " ") + value;
}

/** A price typed by a person ("98", "98.5", "¥1,280.00") to minor units, or null. */
export function parseMoney(text, currency) {
  const digits = ZERO_DECIMALS.has(currency) ? 0 : 2;
  const clean = String(text).replace(/[^\d.]/g, "");
  if (!/^\d+(\.\d*)?$/.test(clean)) return null;
  const value = Math.round(parseFloat(clean) * 10 ** digits);
  return value >= 1 ? value : null;
}

export function clock(ts) {
  const d = new Date(ts);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function dayLabel(ts) {
  const d = new Date(ts);
  const today = new Date();
  if (d.toDateString() === today.toDateString()) return "Today";
  const y = new Date(today);
  y.setDate(today.getDate() - 1);
  if (d.toDateString() === y.toDateString()) return "Yesterday";
  return d.toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" });
}

/** A duration in words: 42 s, 5 min, 3 h 10 min, 9 days 23 h. */
export function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${m % 60} min`;
  return `${Math.floor(hrs / 24)} days ${hrs % 24} h`;
}

export function ago(ts, now) {
  const ms = now - ts;
  return ms < 45000 ? "just now" : `${duration(ms)} ago`;
}

// --- errors in words ------------------------------------------------------------------------

const ERROR_WORDS = {
  disconnected: "The connection was lost. Check your network and try again.",
  1004: "Something in that request was not accepted. Please check it and try again.",
  1005: "That is too long to send in one message. Please shorten it.",
  2001: "You are not signed in yet. Please wait a moment.",
  2002: "Your sign-in is no longer valid. Please reload the page.",
  2003: "Your sign-in has expired. Please reload the page.",
  3001: "That could not be found. It may have been removed.",
  3002: "You are not part of this conversation.",
  3003: "Your account cannot do that here.",
  3004: "This price cannot be paid directly. Please ask the shop for an offer in the chat.",
  4001: "You are sending too fast. Your message will go out in a moment.",
  4002: "It is too late to recall that message.",
  4003: "You can only recall your own messages.",
  4004: "That message cannot be recalled.",
  5001: "The chat service had a problem. Please try again.",
  5002: "Payments are not available right now.",
  6000: "That payment request was not valid.",
  6001: "Please enter a valid amount.",
  6002: "That currency is not supported.",
  6003: "The currencies do not match.",
  6010: "Your balance is too low for this payment. Please top up your wallet and try again.",
  6020: "That order or transfer could not be found.",
  6021: "This can no longer be done: the order has moved on. The card shows its current state.",
  6022: "Only the other party can do that.",
  6023: "The seller changed the price. Please check the new price on the card before paying.",
  6030: "This payment was already submitted with different details. Please start again.",
  6040: "Wrong payment PIN.",
  6041: "Too many wrong PINs: payments are locked for a while for your safety.",
  6042: "Please set a payment PIN in your wallet first.",
  6043: "The payment PIN must be 6 digits.",
  6050: "This is over your payment limit.",
  6060: "This has already been paid.",
  6090: "The payment could not be completed just now. Nothing was charged; please try again.",
};

/** An error from the hub (or a lost connection) in words a buyer understands. */
export function errorWords(err) {
  if (!err) return "";
  const code = err.code;
  let words = ERROR_WORDS[code];
  if (!words) {
    if (typeof code === "number" && code >= 6000) words = "The payment was refused. Nothing was charged.";
    else if (typeof code === "number" && code >= 5000) words = ERROR_WORDS[5001];
    else words = "That did not work. Please try again.";
  }
  const details = err.details || {};
  if (code === 6040 && typeof details.attempts_left === "number") {
    words += ` ${details.attempts_left} ${details.attempts_left === 1 ? "try" : "tries"} left.`;
  }
  return words;
}

// --- payment cards ----------------------------------------------------------------------------

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

/**
 * One payment card (latest state) with the actions open to `role` ("buyer" or "agent"),
 * `me` the user id, `now` the server clock.
 */
export function renderCard(card, { role, me, now }) {
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
    if (card.state === "PENDING" && v.expires_at) {
      el.append(h("div.card-timer", { dataset: { deadline: v.expires_at, prefix: "Expires in " } },
        "Expires in " + duration(v.expires_at - now)));
    }
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
  if (v.auto_confirm_at && (card.state === "SHIPPED" || card.state === "REFUND_REFUSED")) {
    el.append(h("div.card-timer", { dataset: { deadline: v.auto_confirm_at, prefix: "Completes automatically in " } },
      "Completes automatically in " + duration(v.auto_confirm_at - now)));
  }
  if (card.state === "RELEASED" && v.settled_by === "timer") el.append(h("div.card-line", "Completed automatically."));
  if (card.state === "REFUNDED" && v.buyer_refund) el.append(h("div.card-line", `Refunded ${money(v.buyer_refund, v.currency)}`));
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

// --- dialogs ----------------------------------------------------------------------------------

/**
 * A modal form inside `host`. `onSubmit(values)` may throw: the error is shown in words and the
 * dialog stays open, so a retry reuses whatever the caller keeps (e.g. an idempotency key).
 * Resolves with the result of onSubmit, or null when cancelled.
 */
export function modal(host, { title, text, fields = [], submit = "OK", onSubmit }) {
  return new Promise((resolve) => {
    const error = h("div.dialog-error", { role: "alert" });
    const inputs = fields.map((f) => {
      const input = f.type === "textarea"
        ? h("textarea", { name: f.name, rows: 3, maxlength: f.maxlength, required: f.required !== false })
        : h("input", { name: f.name, type: f.type || "text", inputmode: f.inputmode, pattern: f.pattern,
          maxlength: f.maxlength, autocomplete: f.autocomplete || "off", required: f.required !== false,
          placeholder: f.placeholder });
      if (f.value !== undefined) input.value = f.value;
      return h("label.field", h("span", f.label), input);
    });
    const ok = h("button.btn.primary", { type: "submit" }, submit);
    const cancel = h("button.btn", { type: "button" }, "Cancel");
    const form = h("form.dialog", { role: "dialog", "aria-modal": "true", "aria-label": title },
      h("h2", title), text ? h("p", text) : null, inputs, error, h("div.dialog-actions", cancel, ok));
    const backdrop = h("div.backdrop", form);
    const close = (value) => {
      backdrop.remove();
      resolve(value);
    };
    cancel.addEventListener("click", () => close(null));
    backdrop.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") close(null);
    });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const values = Object.fromEntries(new FormData(form).entries());
      ok.disabled = true;
      error.textContent = "";
      try {
        close(await onSubmit(values));
      } catch (err) {
        error.textContent = err.words || errorWords(err);
        ok.disabled = false;
      }
    });
    host.append(backdrop);
    const first = form.querySelector("input, textarea") || ok;
    first.focus();
  });
}

export function wordsError(words) {
  const err = new Error(words);
  err.words = words;
  return err;
}

const ICONS = {
  image: "M4 5h16a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1zm1 2v8.6l4-4 3 3 2-2 4 4V7H5zm10.5 1.5a1.5 1.5 0 1 1 0 3 1.5 1.5 0 0 1 0-3z",
  close: "M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4L12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z",
};

/** A small inline SVG icon (no icon font, no emoji font needed). */
export function icon(name, size = 20) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICONS[name]);
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}
