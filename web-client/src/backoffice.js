// The seller back office: the shop's inbox, one conversation with the order and escrow state
// beside it, the seller's actions, and the shop's response figures.
import { ChatClient, randomId } from "./client.js";
import { h, money, parseMoney, errorWords, wordsError, duration, icon, staffStatusWords } from "./ui.js";
import { tickTimers, preview, orderStateLabel, renderCard, cardSteps, URGENT_STATES } from "./cards.js";
import { renderThread, productCard } from "./thread.js";
import { agentNames } from "./agent_names.js";
import { QuickReplies } from "./quick.js";
import { dialogAction } from "./backoffice_actions.js";
import { Pictures, pictureComposer } from "./pictures.js";
import { t, setLang, pickLang, formatDateTime } from "./i18n.js";
import { isBuyerQuestion, isShopReply, waitingSince } from "./waits.js";
import { BuyerPanel } from "./buyer_panel.js";
import { ClosedInbox } from "./inbox_closed.js";
import { FollowersPanel } from "./backoffice_follow.js";
import { InboxSearch, revealMessage } from "./backoffice_search.js";
import { PhoneScreens } from "./backoffice_phone.js";
import { ResponseFigures } from "./backoffice_figures.js";

// Conversations handed to another agent are not pushed to this one (docs/protocol.md, "What each
// connection receives live"): the inbox asks the hub for what changed (a sync with the inbox
// cursor, answered with the changed conversations only) this often while the page is visible.
const INBOX_POLL_MS = 10000;

export function startBackoffice({ root, hub, getToken, agents = [], shopName, demo = false, inboxPollMs = INBOX_POLL_MS,
  lang = document.documentElement.lang || navigator.language }) {
  document.documentElement.lang = setLang(pickLang(lang));
  const client = new ChatClient({ url: hub.replace(/^http/, "ws") + "/ws", getToken, storageKey: "tradechat:backoffice" });
  const state = {
    selected: null, loaded: new Set(), loadingOlder: false, toast: "", filter: "",
    away: false, autoText: "", typingSent: 0,
  };

  // --- layout -----------------------------------------------------------------------------------
  const statusEl = h("span.conn");
  const awayBox = h("input", { type: "checkbox", id: "away" });
  const autoInput = h("input.auto-text", { type: "text", maxlength: 500, "aria-label": t("autoReplyLabel"),
    placeholder: t("autoReplyPlaceholder") });
  const figures = new ResponseFigures(client);
  const whoEl = h("span.who");
  const topbar = h("header.topbar",
    h("div.brand", demo ? h("span.badge.demo-flag", "DEMO") : null, ` ${t("backOffice")} · `, h("b", shopName || "")),
    whoEl, statusEl,
    h("label.away", awayBox, " " + t("away")), autoInput, figures.el);
  // A plain list of buttons: an option role around a button nests one control in another.
  const inboxList = h("ul.inbox-list", { "aria-label": t("conversations") });
  const filterInput = h("input.filter", { type: "search", placeholder: t("filterPlaceholder"), "aria-label": t("filterLabel") });
  const closedInbox = new ClosedInbox({ client, onChange: () => render() });
  const search = new InboxSearch({ client, inboxList, open: (conv, seq) => openAt(conv, seq) });
  const inbox = h("aside.inbox", h("div.inbox-head", h("h2", t("inbox")), search.el, filterInput, closedInbox.toggle),
    search.results, inboxList);
  const followers = new FollowersPanel({ client, selected: () => state.selected && client.conversations.get(state.selected) });
  inbox.append(followers.el);
  const chatHead = h("div.chat-head");
  const list = h("div.messages", { role: "log", "aria-label": t("messages"), tabindex: 0 });
  const typingEl = h("div.typing");
  const toastEl = h("div.toast", { role: "alert", hidden: true });
  const quickBar = h("div.quick", { role: "group", "aria-label": t("quickReplies") });
  const textarea = h("textarea", { rows: 2, placeholder: t("replyPlaceholder"), "aria-label": t("reply"), maxlength: 4000 });
  const quick = new QuickReplies({ bar: quickBar, textarea });
  const pictures = new Pictures({ hub, getToken, onChange: () => render() });
  const photo = pictureComposer({ pictures, textarea, conv: () => state.selected, send: (conv, body) => {
    client.send(conv, body);
    render({ stick: true });
  } });
  const composer = h("form.composer",
    photo.button, photo.input,
    h("button.icon-btn", { type: "button", dataset: { action: "image" }, title: t("sendPictureByAddress"), "aria-label": t("sendPicture") }, icon("image")),
    h("button.btn.small.send-listing", { type: "button", dataset: { action: "send-listing" }, title: t("sendListingTitle") }, t("sendListing")),
    textarea,
    h("button.btn.primary.send", { type: "submit" }, t("send")));
  const chat = h("section.chat", chatHead, list, typingEl, toastEl, quickBar, photo.status, composer);
  const buyers = new BuyerPanel({ client });
  const sideBody = h("div.side-body"); // redrawn on every event; the buyer panel under it is kept
  const side = h("aside.side", { "aria-label": t("orderAndEscrow") }, sideBody, buyers.el);
  const empty = h("div.placeholder", t("chooseConversation"));
  const main = h("main.grid", inbox, chat, side);
  const phone = new PhoneScreens({ main, inboxList });
  root.replaceChildren(topbar, main);
  chat.hidden = true;
  side.hidden = true;
  main.append(empty);

  // --- events -----------------------------------------------------------------------------------
  const rerender = () => render();
  const names = agentNames(client);
  for (const t of ["status", "conversation", "pending", "presence", "receipt", "typing", "tokenerror", "agents"]) client.addEventListener(t, rerender);
  client.addEventListener("fatal", (ev) => {
    state.fatal = ev.detail.code;
    render();
  });
  client.addEventListener("welcome", (ev) => {
    const me = ev.detail;
    whoEl.textContent = me.user;
    quick.load(me.shop);
    const saved = JSON.parse(localStorage.getItem(`tradechat:away:${me.user}`) || "{}");
    state.autoText = saved.text || t("autoReplyDefault");
    autoInput.value = state.autoText;
    if (saved.away && !state.away) setAway(true);
  });
  client.addEventListener("status", () => {
    // `synced` comes before the client calls itself online: act once it is, or every request
    // made here would be skipped (the history preload never ran, so waits were measured from
    // the latest message instead of the oldest unanswered one).
    if (client.status !== "online") return;
    preload();
    figures.refresh();
    syncAutoReply(); // the hub's away message follows this page's switch after every (re)connect
  });
  client.addEventListener("synced", () => {
    if (client.status === "online") preload(); // a later inbox refresh may bring new conversations
  });
  setInterval(() => {
    if (client.status === "online" && !document.hidden) client.refreshInbox().catch(() => {});
  }, inboxPollMs);
  client.addEventListener("message", (ev) => {
    const { conv, msg } = ev.detail;
    if (conv.id === state.selected && !document.hidden) client.markRead(conv.id);
    if (isBuyerQuestion(msg) || isShopReply(msg)) figures.soon();
    render();
  });

  function setAway(away) {
    state.away = away;
    awayBox.checked = away;
    client.manualAway = away;
    client.setPresence(away || document.hidden ? "away" : "online");
    syncAutoReply();
    saveAway();
    render();
  }
  /** The hub sends the away message (also when this page is closed), once per conversation per half hour. */
  function syncAutoReply() {
    const text = state.autoText.trim();
    if (client.status !== "online") return;
    client.request(text ? { type: "auto_reply", active: state.away, text } : { type: "auto_reply", active: false })
      .catch(() => {});
  }
  function saveAway() {
    if (!client.me) return;
    localStorage.setItem(`tradechat:away:${client.me.user}`, JSON.stringify({ away: state.away, text: state.autoText }));
  }
  awayBox.addEventListener("change", () => setAway(awayBox.checked));
  autoInput.addEventListener("change", () => {
    state.autoText = autoInput.value;
    syncAutoReply();
    saveAway();
  });
  filterInput.addEventListener("input", () => {
    state.filter = filterInput.value.trim().toLowerCase();
    renderInbox();
  });

  async function preload() {
    // The latest page of the most recent conversations: waiting times and figures need it.
    const convs = [...client.conversations.values()].sort((a, b) => lastTs(b) - lastTs(a)).slice(0, 50);
    for (const conv of convs) {
      if (state.loaded.has(conv.id) || client.status !== "online") continue;
      try {
        await client.loadOlder(conv.id, 50);
        state.loaded.add(conv.id);
      } catch {
        break;
      }
    }
    render();
  }

  // --- inbox ------------------------------------------------------------------------------------
  /** An order of `conv` waiting for the shop's answer to a refund request or an after-sale claim, if any. */
  function urgentOrder(conv) {
    for (const card of conv.cards.values()) if (card.entity === "order" && URGENT_STATES[card.state]) return card;
    return null;
  }

  function lastTs(conv) {
    return conv.view.last_message ? conv.view.last_message.ts : conv.view.created_at;
  }

  function sortedConversations() {
    const all = [...client.conversations.values()].filter((c) => c.view.listing);
    const keyed = all.map((conv) => ({ conv, waiting: waitingSince(conv), urgent: urgentOrder(conv) }));
    keyed.sort((a, b) => {
      // A refund request or claim runs against the shop's answer deadline: before any question.
      if (!!a.urgent !== !!b.urgent) return a.urgent ? -1 : 1;
      if (a.urgent && b.urgent) return (a.urgent.view.deadline_at || 0) - (b.urgent.view.deadline_at || 0);
      if ((a.waiting !== null) !== (b.waiting !== null)) return a.waiting !== null ? -1 : 1;
      if (a.waiting !== null && a.waiting !== b.waiting) return a.waiting - b.waiting; // longest wait first
      if ((b.conv.view.unread || 0) !== (a.conv.view.unread || 0)) return (b.conv.view.unread || 0) - (a.conv.view.unread || 0);
      return lastTs(b.conv) - lastTs(a.conv);
    });
    return keyed;
  }

  function renderInbox() {
    const now = client.now();
    const items = [];
    for (const { conv, waiting, urgent } of sortedConversations()) {
      const v = conv.view;
      const hay = `${v.buyer} ${v.listing.title}`.toLowerCase();
      if (state.filter && !hay.includes(state.filter)) continue;
      if (!closedInbox.listed(conv)) continue; // closed ones only when the toggle shows them
      const buyerPresence = client.presence.get("u:" + v.buyer);
      const wait = waiting !== null ? now - waiting : null;
      items.push(h("li",
        h("button.conv" + (conv.id === state.selected ? ".selected" : ""), { type: "button", dataset: { conv: conv.id, buyer: v.buyer },
          "aria-current": conv.id === state.selected ? "true" : null },
          h("div.conv-top",
            h("span.presence-dot", { dataset: { status: buyerPresence ? buyerPresence.status : "offline" }, "aria-hidden": "true" }),
            h("b.conv-buyer", v.buyer),
            v.unread ? h("span.unread", { "aria-label": t("nUnread", { n: v.unread }) }, String(v.unread)) : null,
            wait !== null ? h("span.wait" + (wait > 5 * 60000 ? ".late" : ""), { dataset: { since: waiting } }, t("waitingFor", { d: duration(wait) })) : null),
          urgent ? h("div.urgent", t(URGENT_STATES[urgent.state])) : null,
          h("div.conv-listing", v.listing.title),
          h("div.conv-last", preview(v.last_message)),
          h("div.conv-agent", v.agent ? `→ ${names.label(v.shop, v.agent)}` : t("unassigned")))));
    }
    if (!items.length) items.push(h("li.none", t(client.status === "online" ? "noConversations" : "connecting")));
    closedInbox.renderToggle();
    const focused = inboxList.contains(document.activeElement) ? document.activeElement.dataset.conv : null;
    inboxList.replaceChildren(...items);
    if (focused) inboxList.querySelector(`button[data-conv="${CSS.escape(focused)}"]`)?.focus();
  }
  inboxList.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button.conv");
    if (btn) select(btn.dataset.conv);
  });
  inboxList.addEventListener("keydown", (ev) => {
    if (ev.key !== "ArrowDown" && ev.key !== "ArrowUp") return;
    const buttons = [...inboxList.querySelectorAll("button.conv")];
    const i = buttons.indexOf(document.activeElement);
    const next = buttons[Math.max(0, Math.min(buttons.length - 1, i + (ev.key === "ArrowDown" ? 1 : -1)))];
    if (next) {
      ev.preventDefault();
      next.focus();
    }
  });

  async function select(convId) {
    state.selected = convId;
    state.toast = "";
    empty.remove();
    chat.hidden = false;
    side.hidden = false;
    phone.showChat();
    render({ stick: true });
    const conv = client.conversations.get(convId);
    if (!state.loaded.has(convId) && client.status === "online") {
      try {
        await client.loadOlder(convId, 50);
        state.loaded.add(convId);
      } catch (err) {
        state.toast = errorWords(err);
      }
    }
    client.markRead(conv.id);
    render({ stick: true });
    textarea.focus();
  }

  /** A search hit: the conversation, scrolled to the matching message. */
  async function openAt(convId, seq) {
    await select(convId);
    if (seq) await revealMessage(client, convId, seq, list, () => render()).catch((err) => { state.toast = errorWords(err); });
  }

  // --- conversation -------------------------------------------------------------------------------
  function knownAgents() {
    const set = new Set(agents);
    for (const c of client.conversations.values()) if (c.view.agent) set.add(c.view.agent);
    return [...set].sort();
  }

  function renderChat(opts) {
    const conv = state.selected && client.conversations.get(state.selected);
    if (!conv) return;
    const v = conv.view;
    const bp = client.presence.get("u:" + v.buyer);
    const others = knownAgents().filter((a) => a !== v.agent);
    names.want(v.shop, others);
    const handSelect = h("select", { "aria-label": t("handOverTo") },
      h("option", { value: "" }, t("handOverToMenu")), others.map((a) => h("option", { value: a }, names.label(v.shop, a))));
    handSelect.addEventListener("change", () => handOver(conv, handSelect.value));
    chatHead.replaceChildren(phone.back,
      h("div.chat-title",
        h("b", v.buyer), " ", buyers.badge(conv), " ",
        h("span.presence-dot", { dataset: { status: bp ? bp.status : "offline" } }),
        h("span.muted", " " + t({ online: "stOnline", away: "stAway" }[bp && bp.status] || "stOffline")),
        h("div.muted", t("aboutListing", { title: v.listing.title }), v.agent ? t("assignedTo", { agent: names.label(v.shop, v.agent) }) : t("unassigned"))),
      closedInbox.button(conv), handSelect);
    renderThread(list, conv, {
      client, role: "agent", counterpartSide: "buyer", loadingOlder: state.loadingOlder, stick: opts.stick, pictures, agents: names,
      delivered: (msg) => (bp && bp.status !== "offline") || (bp && (bp.last_seen || 0) >= msg.ts),
      canRecall: (msg) => ["text", "image", "product"].includes(msg.kind) && client.now() - msg.ts < client.me.recall_window_ms,
    });
    const typing = conv.typingUntil > Date.now();
    typingEl.textContent = typing ? `${v.buyer} is typing…` : "";
    typingEl.classList.toggle("on", typing);
    toastEl.textContent = state.toast;
    toastEl.hidden = !state.toast;
    quick.render();
    for (const el of composer.querySelectorAll("textarea, button")) el.disabled = false;
    renderSide(conv);
  }

  function renderSide(conv) {
    const v = conv.view;
    const orders = [...conv.cards.values()].filter((c) => c.entity === "order").sort((a, b) => b.seq - a.seq);
    const transfers = [...conv.cards.values()].filter((c) => c.entity === "transfer").sort((a, b) => b.seq - a.seq);
    const open = orders.find((o) => o.state === "OFFERED");
    const price = h("input", { name: "price", inputmode: "decimal", required: true, "aria-label": t("unitPrice"),
      value: ((open ? open.view.unit_price : v.listing.price) / 100).toFixed(2) });
    const qty = h("input", { name: "quantity", type: "number", min: 1, max: 9999, value: open ? open.view.quantity : 1, "aria-label": t("quantity") });
    const offerForm = h("form.offer",
      h("h3", t(open ? "changeOpenOffer" : "makeOffer")),
      h("div.offer-row", h("label.field", h("span", t("unitPriceLabel", { currency: v.listing.currency })), price),
        h("label.field", h("span", t("quantity")), qty)),
      h("button.btn.primary", { type: "submit" }, t(open ? "updateOffer" : "sendOffer")));
    offerForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      sendOffer(conv, price.value, qty.value, open ? open.id : null, offerForm);
    });
    // The pane is drawn again on every event: keep what the agent is typing into the same offer.
    offerForm.dataset.key = `${conv.id}:${open ? `${open.id}:${open.view.unit_price}` : "new"}`;
    const before = side.querySelector("form.offer");
    const focused = before && before.contains(document.activeElement) ? document.activeElement.name : null;
    if (before && before.dataset.key === offerForm.dataset.key) {
      price.value = before.elements.price.value;
      qty.value = before.elements.quantity.value;
    }
    const now = client.now();
    buyers.render(conv);
    sideBody.replaceChildren(...[
      h("h3", t("listing")),
      productCard(v.listing),
      offerForm,
      h("h3", t("ordersAndEscrow")),
      orders.length ? orders.map((o) => h("div.side-card", orderFacts(o), renderCardFor(o, now))) : h("p.muted", t("noOrderYet")),
      transfers.length ? [h("h3", t("transfers")), transfers.map((tr) => renderCardFor(tr, now))] : null,
    ].flat(Infinity).filter(Boolean));
    if (focused && offerForm.elements[focused]) offerForm.elements[focused].focus();
  }

  function orderFacts(o) {
    const v = o.view;
    const facts = [`${orderStateLabel(o.state)} · ${money(v.amount, v.currency)}`];
    if (v.paid_at) facts.push(t("factPaid", { when: formatDateTime(v.paid_at) }));
    if (v.shipped_at) facts.push(t("factShipped", { when: formatDateTime(v.shipped_at) }));
    if (v.held) facts.push(t("factHeld", { amount: money(v.held, v.currency) }));
    return h("div.facts", facts.join(" · "));
  }

  function renderCardFor(card, now) {
    const conv = client.conversations.get(state.selected);
    return renderCard(card, { role: "agent", me: client.me ? client.me.user : null, now, steps: cardSteps(conv, card.id) });
  }

  function render(opts = {}) {
    statusEl.textContent = staffStatusWords(client, state.fatal);
    statusEl.dataset.status = client.status;
    renderInbox();
    if (state.selected) renderChat(opts);
    figures.render();
  }

  // --- actions -------------------------------------------------------------------------------------

  let offerKey = null;
  async function sendOffer(conv, priceText, qtyText, order, form) {
    const unit = parseMoney(priceText, conv.view.listing.currency);
    const quantity = parseInt(qtyText, 10);
    if (!unit || !(quantity >= 1)) {
      state.toast = t("enterPriceQty");
      return render();
    }
    // The same key while the same form values are retried; a new one for a new offer.
    const signature = `${conv.id}:${order}:${unit}:${quantity}`;
    if (!offerKey || offerKey.signature !== signature) offerKey = { signature, key: randomId("offer").slice(0, 40) };
    form.querySelector("button").disabled = true;
    try {
      await client.money({ type: "offer", conv: conv.id, order: order || undefined, price: unit, quantity, key: offerKey.key });
      offerKey = null;
      state.toast = "";
    } catch (err) {
      state.toast = errorWords(err);
    }
    render();
  }

  async function handOver(conv, agent) {
    if (!agent) return;
    try {
      await client.request({ type: "assign", conv: conv.id, agent });
    } catch (err) {
      state.toast = errorWords(err);
    }
    render();
  }

  function send(text) {
    if (!text.trim() || !state.selected) return;
    client.send(state.selected, { kind: "text", text: text.trim() });
    if (state.typingSent) {
      client.typing(state.selected, false);
      state.typingSent = 0;
    }
    render({ stick: true });
  }
  composer.addEventListener("submit", (ev) => {
    ev.preventDefault();
    send(textarea.value);
    textarea.value = "";
  });
  textarea.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      send(textarea.value);
      textarea.value = "";
    }
  });
  textarea.addEventListener("input", () => {
    if (state.selected && Date.now() - state.typingSent > 3000) {
      state.typingSent = Date.now();
      client.typing(state.selected, true);
    }
  });
  list.addEventListener("scroll", async () => {
    const conv = state.selected && client.conversations.get(state.selected);
    if (list.scrollTop > 60 || !conv || !conv.more || conv.messages.has(1) || state.loadingOlder) return;
    state.loadingOlder = true;
    try {
      await client.loadOlder(conv.id);
    } catch (err) {
      state.toast = errorWords(err);
    }
    state.loadingOlder = false;
    render();
  });

  root.addEventListener("click", async (ev) => {
    const target = ev.target.closest("[data-action]");
    if (!target) return;
    const action = target.dataset.action;
    const conv = state.selected && client.conversations.get(state.selected);
    const card = conv && target.dataset.entity ? conv.cards.get(target.dataset.entity) : null;
    const host = chat;
    state.toast = "";
    try {
      if (action === "retry") client.retry(target.dataset.cmid);
      else if (action === "discard") client.discard(target.dataset.cmid);
      else if (action === "recall") await client.recall(conv.id, Number(target.dataset.seq));
      else if (quick.onAction(action, target)) return;
      else if (action === "conv-close" || action === "conv-reopen") await closedInbox.act(action, conv);
      else if (action === "quick-add") {
        if (!quick.add()) throw wordsError(t("typeReplyFirst"));
      } else await dialogAction(action, { client, conv, card, host });
    } catch (err) {
      state.toast = err.words || errorWords(err);
    }
    render();
  });

  setInterval(() => {
    tickTimers(root, client.now());
    for (const el of inboxList.querySelectorAll("[data-since]")) {
      const wait = client.now() - Number(el.dataset.since);
      el.textContent = t("waitingFor", { d: duration(wait) });
      el.classList.toggle("late", wait > 5 * 60000);
    }
    const conv = state.selected && client.conversations.get(state.selected);
    if (conv && typingEl.classList.contains("on") && conv.typingUntil < Date.now()) render();
  }, 1000);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.selected) client.markRead(state.selected);
  });
  client.start();
  render();
  window.tradechatBackoffice = { client, state };
  return { client, state };
}
