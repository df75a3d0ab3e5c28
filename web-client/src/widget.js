// The listing-page widget: runs inside the iframe the embed script adds to the page.
import { ChatClient, tokenExpiry } from "./client.js";
import { h, errorWords, duration, icon } from "./ui.js";
import { tickTimers, preview } from "./cards.js";
import { renderThread, productCard } from "./thread.js";
import { dialogAction } from "./widget_actions.js";
import { bannerText, emptyWords, presenceLine } from "./widget_words.js";
import { t, setLang, pickLang } from "./i18n.js";
import { Chime, alertBody, shouldAlert } from "./notify.js";
import { renderShopCredit } from "./credit.js";
import { Pictures, pictureComposer } from "./pictures.js";
import { followUi } from "./widget_follow.js";
import { shopPresenceUi } from "./widget_presence.js";
import { agentNames, renderAnswering } from "./agent_names.js";

const params = new URLSearchParams(location.hash.slice(1));
const SHOP = params.get("shop") || "";
const SHOP_NAME = params.get("shopName") || SHOP;
// The embed script's data-lang, else the listing page's lang, else the browser's.
document.documentElement.lang = setLang(pickLang(params.get("lang"), navigator.language));
document.title = t("frameTitle");
let LISTING = null;
try {
  const raw = JSON.parse(params.get("listing") || "null");
  if (raw && raw.id && raw.title && Number.isInteger(raw.price)) {
    LISTING = { id: raw.id, title: raw.title, price: raw.price, currency: raw.currency || "CNY" };
    if (raw.image) LISTING.image = raw.image;
  }
} catch {
  LISTING = null;
}
// The marketplace's signature of the listing card: lets the buyer pay the listed price without an offer.
const LISTING_TOKEN = params.get("listingToken") || null;
const HUB = location.origin;
const WS_URL = HUB.replace(/^http/, "ws") + "/ws";

const app = document.getElementById("app");
const state = {
  open: false,
  token: null,
  provider: false,
  client: null,
  conv: null,
  publicPresence: null,
  loadingOlder: false,
  opening: false,
  toast: "",
  typingSent: 0,
  lastUnread: -1,
  following: null, // whether the buyer follows SHOP (null: not known yet)
  followOfferDismissed: false,
};
const tokenWaits = new Map();
let tokenRid = 0;
const pictures = new Pictures({ hub: HUB, getToken: () => getToken(), onChange: () => render() });
const presence = shopPresenceUi({ hub: HUB, shop: SHOP, state, render: () => render() });
const shopPresence = presence.shopPresence;
const follow = followUi({ state, shop: SHOP, shopName: SHOP_NAME, render: () => render(), say: (w, ok) => say(w, ok) });

// --- talking to the page ----------------------------------------------------------------------

function toPage(message) {
  if (window.parent !== window) window.parent.postMessage({ tradechat: 1, ...message }, "*");
}

window.addEventListener("message", (ev) => {
  if (ev.source !== window.parent || !ev.data || !ev.data.tradechat) return;
  const m = ev.data;
  if (m.cmd === "identify") identify(m.provider ? { provider: true } : { token: m.token });
  else if (m.cmd === "open") setOpen(true);
  else if (m.cmd === "close") setOpen(false);
  else if (m.cmd === "token" && tokenWaits.has(m.rid)) {
    const { resolve, reject } = tokenWaits.get(m.rid);
    tokenWaits.delete(m.rid);
    // The page's token function rejected: that is a failure to retry, not "signed out".
    if (m.failed) reject(new Error("the page could not get a token"));
    else resolve(m.token);
  }
});

const TOKEN_WAIT_MS = 15000;

/** Ask the page's token function (through the embed script); rejects if it fails or never answers. */
function askPageForToken() {
  return new Promise((resolve, reject) => {
    const rid = ++tokenRid;
    const timer = setTimeout(() => {
      tokenWaits.delete(rid);
      reject(new Error("the page did not answer with a token"));
    }, TOKEN_WAIT_MS);
    tokenWaits.set(rid, {
      resolve: (token) => {
        clearTimeout(timer);
        resolve(token);
      },
      reject: (err) => {
        clearTimeout(timer);
        reject(err);
      },
    });
    toPage({ event: "token", rid });
  });
}

async function getToken() {
  if (state.provider) return askPageForToken();
  const exp = state.token ? tokenExpiry(state.token) : null;
  if (exp && exp * 1000 < Date.now() + 5000) {
    say(t("signInExpired"));
    render();
    return null;
  }
  return state.token;
}

function identify({ token, provider }) {
  if (state.client) state.client.stop();
  state.client = null;
  state.conv = null;
  state.token = token || null;
  state.provider = !!provider;
  state.fatal = null;
  if (!state.token && !state.provider) {
    render();
    return;
  }
  const client = new ChatClient({ url: WS_URL, getToken, storageKey: "tradechat:widget" });
  state.client = client;
  state.agents = agentNames(client);
  const rerender = () => render();
  for (const type of ["status", "conversation", "pending", "presence", "receipt", "typing", "message", "tokenerror", "agents"]) {
    client.addEventListener(type, rerender);
  }
  client.addEventListener("status", () => {
    if (client.status !== "online") {
      // What the hub pushed about the shop is stale once cut off, and a resume that finds nothing
      // new does not push it again: until it does (on `open`), the public status is polled.
      client.presence.delete("s:" + SHOP);
      return;
    }
    setTimeout(() => {
      if (state.client === client) presence.poll();
    }, 1000);
    findConversation();
    if (state.open) ensureOpen();
    follow.refresh(client);
  });
  client.addEventListener("message", (ev) => {
    const { conv, msg } = ev.detail;
    if (state.open && state.conv && conv === state.conv && !document.hidden) client.markRead(state.conv.id);
    const ours = conv.view.shop === SHOP || !conv.view.shop; // not yet synced: only this shop answers here
    if (ours && shouldAlert(msg, { mine: client.isMine(msg), panelOpen: state.open, hidden: document.hidden })) alertBuyer(msg);
  });
  client.addEventListener("fatal", (ev) => {
    state.fatal = ev.detail.code;
    render();
  });
  client.start();
  render();
}

function findConversation() {
  const c = state.client;
  if (!c || state.conv || !LISTING) return;
  for (const conv of c.conversations.values()) {
    if (conv.view.shop === SHOP && conv.view.listing && conv.view.listing.id === LISTING.id) state.conv = conv;
  }
}

async function ensureOpen() {
  const c = state.client;
  if (!c || c.status !== "online" || state.opening || !LISTING) return;
  state.opening = true;
  try {
    const conv = await c.open(SHOP, LISTING, LISTING_TOKEN);
    state.conv = conv;
    if (conv.messages.size < 2 && conv.view.last_seq > conv.messages.size) await c.loadOlder(conv.id);
    c.markRead(conv.id);
  } catch (err) {
    say(errorWords(err));
  } finally {
    state.opening = false;
    render({ stick: true });
  }
}

// --- alerts (see notify.js): a chime here, the desktop notification and the title on the page ---

const chime = new Chime(window);
for (const type of ["pointerdown", "keydown"]) window.addEventListener(type, () => chime.unlock(), true);

function alertBuyer(msg) {
  state.chimes = (state.chimes || 0) + (chime.play() ? 1 : 0);
  toPage({ event: "notify", title: t("newMessageFrom", { shop: SHOP_NAME }), body: alertBody(preview(msg)) });
}

function setOpen(open) {
  if (state.open === open) return;
  state.open = open;
  toPage({ event: "layout", open });
  app.replaceChildren();
  render({ stick: true });
  if (open) {
    state.wantFocus = true; // on the message box, as soon as it can be typed in (see renderPanel)
    ensureOpen();
    render();
  } else {
    app.querySelector(".launcher")?.focus();
  }
}

// --- rendering --------------------------------------------------------------------------------

function unreadHere() {
  const c = state.client;
  if (!c) return 0;
  let n = 0;
  for (const conv of c.conversations.values()) if (conv.view.shop === SHOP) n += conv.view.unread || 0;
  return n;
}

function render(opts = {}) {
  const unread = unreadHere();
  if (unread !== state.lastUnread) {
    state.lastUnread = unread;
    toPage({ event: "unread", count: unread });
  }
  if (!state.open) return renderLauncher(unread);
  renderPanel(opts);
}

function renderLauncher(unread) {
  const p = shopPresence();
  const lit = p.status === "online";
  const words = t({ online: "stOnline", away: "stAway", unknown: "stUnknown" }[p.status] || "stOffline");
  const label = t("launcherLabel", { shop: SHOP_NAME, status: words }) + (unread ? t("launcherUnread", { n: unread }) : "");
  let btn = app.querySelector(".launcher");
  if (!btn) {
    btn = h("button.launcher", { type: "button", onclick: () => setOpen(true) },
      h("span.launcher-icon", { "aria-hidden": "true" }, icon("chat", 30)), h("span.badge-count"));
    app.replaceChildren(btn);
  }
  btn.classList.toggle("lit", lit);
  btn.classList.toggle("dim", !lit);
  btn.dataset.status = p.status;
  btn.setAttribute("aria-label", label);
  btn.title = label;
  const badge = btn.querySelector(".badge-count");
  badge.textContent = unread > 99 ? "99+" : unread ? String(unread) : "";
  badge.hidden = !unread;
}

function renderPanel(opts) {
  let panel = app.querySelector(".panel");
  if (!panel) panel = buildPanel();
  const c = state.client;
  const p = shopPresence();
  panel.querySelector(".presence-dot").dataset.status = p.status;
  panel.querySelector(".presence-text").textContent = presenceLine(shopPresence(), state.client);
  const typical = panel.querySelector(".typical");
  typical.textContent = state.typical ? t("usuallyReplies", { d: duration(state.typical) }) : "";
  typical.hidden = !state.typical;
  renderShopCredit(panel, state.publicPresence && state.publicPresence.credit, state.typical);
  renderAnswering(panel, state.agents, state.conv);

  const banner = panel.querySelector(".banner");
  const bannerWords = bannerText(c, state);
  banner.textContent = bannerWords;
  banner.hidden = !bannerWords;
  banner.dataset.status = c ? c.status : "signed-out";

  const toast = panel.querySelector(".toast");
  toast.textContent = state.toast;
  toast.hidden = !state.toast;
  toast.classList.toggle("ok", !!state.toastOk);
  toast.setAttribute("role", state.toastOk ? "status" : "alert");

  const list = panel.querySelector(".messages");
  const conv = state.conv;
  if (conv && c) {
    renderThread(list, conv, {
      client: c, role: "buyer", counterpartSide: "shop", shopName: SHOP_NAME, loadingOlder: state.loadingOlder, stick: opts.stick,
      pictures, agents: state.agents,
      delivered: (msg) => {
        // The last status we knew (while cut off the shop's status is unknown, not a reason to un-deliver).
        const sp = c.presence.get("s:" + SHOP) || state.publicPresence || { status: "offline", last_seen: null };
        return sp.status !== "offline" || (sp.last_seen || 0) >= msg.ts;
      },
      canRecall: (msg) => ["text", "image", "product"].includes(msg.kind) && c.now() - msg.ts < c.me.recall_window_ms,
    });
  } else {
    // Never a blank panel: say why there is no conversation to show yet.
    const words = emptyWords(c, SHOP_NAME);
    const empty = list.querySelector(".empty");
    if (empty && list.children.length === 1) empty.textContent = words;
    else list.replaceChildren(h("div.empty", words));
  }
  follow.draw(panel, conv);
  const typing = panel.querySelector(".typing");
  const isTyping = conv && conv.typingUntil > Date.now();
  typing.textContent = isTyping ? t("isTyping", { name: SHOP_NAME }) : "";
  typing.classList.toggle("on", !!isTyping);
  const canType = !!(c && conv && c.status !== "stopped");
  for (const el of panel.querySelectorAll(".composer textarea, .composer button")) el.disabled = !canType;
  const box = panel.querySelector(".composer textarea");
  if (canType && state.wantFocus) {
    state.wantFocus = false;
    box.focus();
  }
  box.placeholder = t(canType ? "writeMessage" : c && c.status !== "stopped" ? "writeOnceConnected" : "signInToWrite");
}



function buildPanel() {
  const close = h("button.icon-btn", { type: "button", "aria-label": t("closeChat"), onclick: () => setOpen(false) }, icon("close"));
  const buy = LISTING && LISTING_TOKEN ? h("button.btn.small", { type: "button", dataset: { action: "buy-now" } }, t("buyNow")) : null;
  const followBtn = h("button.btn.small.follow-btn", { type: "button", dataset: { action: "follow" }, hidden: true },
    t("followShop"));
  const productActions = h("div.product-actions", buy, followBtn);
  const followOffer = h("div.follow-offer", { hidden: true, role: "status" },
    h("span.follow-offer-text", t("followAfterPay", { shop: SHOP_NAME })),
    h("button.btn.small.primary", { type: "button", dataset: { action: "follow" } }, t("followShop")),
    h("button.link", { type: "button", dataset: { action: "follow-not-now" } }, t("notNow")));
  const header = h("header.head",
    h("div.head-text",
      h("div.shop-name", SHOP_NAME),
      h("div.presence", h("span.presence-dot", { "aria-hidden": "true" }), h("span.presence-text")),
      h("div.typical", { hidden: true }), h("div.shop-credit", { hidden: true })),
    close);
  const textarea = h("textarea", { rows: 1, placeholder: t("writeMessage"), "aria-label": t("message"), maxlength: 4000 });
  const photo = pictureComposer({ pictures, textarea, conv: () => state.conv && state.conv.id, send: (conv, body) => {
    state.client.send(conv, body);
    render({ stick: true });
  } });
  const composer = h("form.composer",
    photo.button, photo.input,
    h("button.icon-btn", { type: "button", dataset: { action: "image" }, "aria-label": t("sendPictureByAddress"), title: t("picture") }, icon("image")),
    h("button.icon-btn", { type: "button", dataset: { action: "transfer" }, "aria-label": t("sendMoney"), title: t("sendMoney") }, "¥"),
    textarea,
    h("button.btn.primary.send", { type: "submit" }, t("send")));
  const list = h("div.messages", { role: "log", "aria-live": "polite", "aria-label": t("messages"), tabindex: 0 });
  const panel = h("section.panel", { "aria-label": t("chatWith", { shop: SHOP_NAME }) },
    header,
    h("div.banner", { role: "status", hidden: true }),
    LISTING ? productCard(LISTING, productActions) : null,
    list,
    followOffer,
    h("div.typing", { "aria-live": "polite" }),
    h("div.toast", { role: "alert", hidden: true }),
    photo.status,
    composer);
  app.replaceChildren(panel);

  panel.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && !panel.querySelector(".backdrop")) setOpen(false);
  });
  composer.addEventListener("submit", (ev) => {
    ev.preventDefault();
    sendText(textarea);
  });
  textarea.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      sendText(textarea);
    }
  });
  textarea.addEventListener("input", () => {
    textarea.style.height = "auto";
    textarea.style.height = Math.min(120, textarea.scrollHeight) + "px";
    typing(true);
  });
  list.addEventListener("scroll", () => {
    if (list.scrollTop < 60) loadOlder();
  });
  panel.addEventListener("click", onAction);
  return panel;
}

let typingTimer = null;
function typing(active) {
  const c = state.client;
  if (!c || !state.conv) return;
  clearTimeout(typingTimer);
  if (active) {
    if (Date.now() - state.typingSent > 3000) {
      state.typingSent = Date.now();
      c.typing(state.conv.id, true);
    }
    typingTimer = setTimeout(() => typing(false), 4000);
  } else if (state.typingSent) {
    state.typingSent = 0;
    c.typing(state.conv.id, false);
  }
}

function sendText(textarea) {
  const text = textarea.value.trim();
  if (!text || !state.conv) return;
  state.client.send(state.conv.id, { kind: "text", text });
  // A reply is now worth waiting for, and this is a gesture of the buyer: the page may ask for
  // permission to show desktop notifications (once; the embed script decides).
  toPage({ event: "ask-notify" });
  textarea.value = "";
  textarea.style.height = "auto";
  typing(false);
  say("");
  render({ stick: true });
}

async function loadOlder() {
  const c = state.client;
  const conv = state.conv;
  if (!c || !conv || !conv.more || state.loadingOlder || c.status !== "online" || conv.messages.has(1)) return;
  state.loadingOlder = true;
  render();
  try {
    await c.loadOlder(conv.id);
  } catch (err) {
    say(errorWords(err));
  } finally {
    state.loadingOlder = false;
    render();
  }
}

// --- actions ----------------------------------------------------------------------------------

function cardOf(id) {
  return state.conv && state.conv.cards.get(id);
}

async function onAction(ev) {
  const target = ev.target.closest("[data-action]");
  if (!target || !state.client) return;
  const action = target.dataset.action;
  const c = state.client;
  const conv = state.conv;
  const host = app.querySelector(".panel");
  const card = target.dataset.entity ? cardOf(target.dataset.entity) : null;
  say("");
  try {
    if (action === "retry") c.retry(target.dataset.cmid);
    else if (action === "discard") c.discard(target.dataset.cmid);
    else if (action === "recall") await c.recall(conv.id, Number(target.dataset.seq));
    else if (await follow.act(action, target)) { /* following the shop */ }
    else if (!conv) return;
    else await dialogAction(action, { client: c, conv, card, host, listing: LISTING, say, target });
  } catch (err) {
    say(err.words || errorWords(err));
  }
  render();
}

/** Show a line under the messages: an error, or (ok) a confirmation styled as one. */
function say(words, ok = false) {
  state.toast = words;
  state.toastOk = ok;
}

// --- start ------------------------------------------------------------------------------------

setInterval(() => {
  const root = app.querySelector(".panel");
  if (root && state.client) tickTimers(root, state.client.now());
  if (state.open && state.conv) {
    const typing = app.querySelector(".typing");
    if (typing && typing.classList.contains("on") && state.conv.typingUntil < Date.now()) render();
  }
}, 1000);
document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  if (state.open && state.conv && state.client) state.client.markRead(state.conv.id);
  presence.poll(); // shown again: the status may be long out of date
});
presence.start();
render();
toPage({ event: "ready", title: t("frameTitle") });
// Standalone (not framed): open at once, e.g. when a phone app shows this page full screen.
if (window.parent === window) setOpen(true);
// For tests and support: the live state of the widget.
window.tradechatWidget = state;
