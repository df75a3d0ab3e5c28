// Shared rendering for the widget and the back office: DOM helpers (text is always set as
// text, never parsed as HTML), money and time formatting and errors in words (from i18n.js),
// modal dialogs, icons.
import { t, formatMoney, currencyDigits, formatClock, formatDay, formatDuration, errorText } from "./i18n.js";

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

/** Minor units to a price in the reader's locale: 12800 CNY -> "¥128.00". */
export const money = formatMoney;

/** A price typed by a person ("98", "98.5", "¥1,280.00") to minor units, or null. */
export function parseMoney(text, currency) {
  const digits = currencyDigits(currency);
  const clean = String(text).replace(/[^\d.]/g, "");
  if (!/^\d+(\.\d*)?$/.test(clean)) return null;
  const value = Math.round(parseFloat(clean) * 10 ** digits);
  return value >= 1 ? value : null;
}

export const clock = formatClock;
export const dayLabel = formatDay;
export const duration = formatDuration;
export const errorWords = errorText;

export function ago(ts, now) {
  const ms = now - ts;
  return ms < 45000 ? t("justNow") : t("ago", { d: duration(ms) });
}

// --- dialogs ----------------------------------------------------------------------------------

/**
 * A modal form inside `host`. `onSubmit(values, dialog)` may throw: the error is shown in words and
 * the dialog stays open, so a retry reuses whatever the caller keeps (e.g. an idempotency key);
 * `dialog.setTitle()`/`dialog.setText()` let it show what changed (a new price). Fields are checked
 * by onSubmit, not by the browser (`novalidate`), so every refusal is in our words.
 * A field of `type: "select"` lists `options` ([value, label]); `onChange(value, form)` follows any field.
 * Tab stays inside the dialog, Escape cancels, and focus goes back where it was.
 * Resolves with the result of onSubmit, or null when cancelled.
 */
export function modal(host, { title, text, fields = [], submit = t("ok"), onSubmit }) {
  return new Promise((resolve) => {
    const opener = host.ownerDocument.activeElement;
    const id = "dlg-" + Math.random().toString(36).slice(2, 10);
    const error = h("div.dialog-error", { role: "alert" });
    const inputs = fields.map((f) => {
      const input = f.type === "textarea"
        ? h("textarea", { name: f.name, rows: 3, maxlength: f.maxlength })
        : f.type === "select"
          ? h("select", { name: f.name }, f.options.map(([value, label]) => h("option", { value }, label)))
          : h("input", { name: f.name, type: f.type || "text", inputmode: f.inputmode, maxlength: f.maxlength,
          autocomplete: f.autocomplete || "off", placeholder: f.placeholder });
      if (f.value !== undefined) input.value = f.value;
      if (f.onChange) input.addEventListener("change", () => f.onChange(input.value, input.form));
      return h("label.field", h("span", f.label), input);
    });
    const ok = h("button.btn.primary", { type: "submit" }, submit);
    const cancel = h("button.btn", { type: "button" }, t("cancel"));
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
        const stops = [...form.querySelectorAll("input, textarea, select, button")].filter((el) => !el.disabled);
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
    const first = form.querySelector("input, textarea, select") || ok;
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
  chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z",
  camera: "M9 4h6l1.5 2H20a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1h3.5L9 4zm3 4a4.5 4.5 0 1 0 0 9 4.5 4.5 0 0 0 0-9zm0 2a2.5 2.5 0 1 1 0 5 2.5 2.5 0 0 1 0-5z",
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

/** What to say of a staff page's connection (back office, arbiter's desk): its status, the
 *  token problem while reconnecting, and why it stopped (`fatal`: the close code, if any). */
export function staffStatusWords(client, fatal) {
  const key = {
    online: "connected",
    reconnecting: client.problem === "token" ? "boReconnectingToken" : "boReconnecting",
    offline: "boWaitingNetwork",
    connecting: "connecting",
    stopped: fatal === 4001 ? "boRefused" : fatal ? "boStopped" : "boSignedOut",
  }[client.status];
  return key ? t(key) : "";
}
