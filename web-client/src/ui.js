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

// --- dialogs ----------------------------------------------------------------------------------

/**
 * A modal form inside `host`. `onSubmit(values, dialog)` may throw: the error is shown in words and
 * the dialog stays open, so a retry reuses whatever the caller keeps (e.g. an idempotency key);
 * `dialog.setTitle()`/`dialog.setText()` let it show what changed (a new price). Fields are checked
 * by onSubmit, not by the browser (`novalidate`), so every refusal is in our words.
 * Tab stays inside the dialog, Escape cancels, and focus goes back where it was.
 * Resolves with the result of onSubmit, or null when cancelled.
 */
export function modal(host, { title, text, fields = [], submit = "OK", onSubmit }) {
  return new Promise((resolve) => {
    const opener = host.ownerDocument.activeElement;
    const id = "dlg-" + Math.random().toString(36).slice(2, 10);
    const error = h("div.dialog-error", { role: "alert" });
    const inputs = fields.map((f) => {
      const input = f.type === "textarea"
        ? h("textarea", { name: f.name, rows: 3, maxlength: f.maxlength })
        : h("input", { name: f.name, type: f.type || "text", inputmode: f.inputmode, maxlength: f.maxlength,
          autocomplete: f.autocomplete || "off", placeholder: f.placeholder });
      if (f.value !== undefined) input.value = f.value;
      return h("label.field", h("span", f.label), input);
    });
    const ok = h("button.btn.primary", { type: "submit" }, submit);
    const cancel = h("button.btn", { type: "button" }, "Cancel");
    const heading = h("h2", { id: id + "-t" }, title);
    const para = h("p", { id: id + "-d", hidden: !text }, text || "");
    const form = h("form.dialog", { role: "dialog", "aria-modal": "true", "aria-labelledby": id + "-t",
      "aria-describedby": id + "-d", novalidate: true },
    heading, para, inputs, error, h("div.dialog-actions", cancel, ok));
    const backdrop = h("div.backdrop", form);
    const close = (value) => {
      backdrop.remove();
      if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
      resolve(value);
    };
    const dialog = {
      setTitle: (words) => { heading.textContent = words; },
      setText: (words) => { para.textContent = words; para.hidden = !words; },
    };
    cancel.addEventListener("click", () => close(null));
    backdrop.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") {
        ev.stopPropagation(); // Escape closes the dialog, not the panel under it
        close(null);
      } else if (ev.key === "Tab") {
        const stops = [...form.querySelectorAll("input, textarea, button")].filter((el) => !el.disabled);
        const i = stops.indexOf(host.ownerDocument.activeElement);
        const next = ev.shiftKey ? (i <= 0 ? stops.length - 1 : i - 1) : (i === stops.length - 1 ? 0 : i + 1);
        ev.preventDefault();
        stops[next]?.focus();
      }
    });
    // A click on the dimmed page or focus escaping by other means comes back to the dialog.
    backdrop.addEventListener("mousedown", (ev) => {
      if (ev.target === backdrop) ev.preventDefault();
    });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const values = Object.fromEntries(new FormData(form).entries());
      ok.disabled = true;
      error.textContent = "";
      try {
        close(await onSubmit(values, dialog));
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
