// The message list of one conversation, shared by the widget and the back office.
import { h, money, clock, dayLabel, errorWords } from "./ui.js";
import { renderCard, cardSteps } from "./cards.js";
import { t, formatDateTime } from "./i18n.js";
import { pictureBubble, pictureSignature } from "./pictures.js";
import { avatarImg } from "./agent_names.js";

/** The product card a conversation is about (also the `product` message kind). */
export function productCard(listing, extra) {
  if (!listing) return h("div.product");
  return h("div.product",
    listing.image ? h("img.product-img", { src: listing.image, alt: "", width: 56, height: 56, loading: "lazy" }) : null,
    h("div.product-text", h("div.product-title", listing.title), h("div.product-price", money(listing.price, listing.currency))),
    extra || null);
}

/**
 * Render `conv` into `list`. Options: client, role ("buyer"/"agent"), counterpartSide
 * ("shop"/"buyer"), delivered(msg) -> bool, canRecall(msg) -> bool, agents (agent_names.js: names
 * and avatars instead of agent ids).
 *
 * Incremental: every row is keyed (message seq, pending cmid, day) with a signature of what it
 * shows, and only rows whose signature changed are built again. A rebuilt <img> is a new request,
 * and a picture whose address is dead is never cached, so rebuilding the list on every event
 * asked for it again and again.
 */
export function renderThread(list, conv, opts) {
  const { client } = opts;
  const me = client.me ? client.me.user : null;
  const now = client.now();
  const pin = pinned(list);
  if (pin.conv !== conv.id) {
    pin.conv = conv.id;
    pin.atBottom = true;
    pin.lastSeq = 0;
    pin.unseen = false;
    pin.rows = new Map();
  }
  const fromBottom = list.scrollHeight - list.scrollTop;
  // Whether the reader was at the bottom is remembered from their own scrolling, not measured now:
  // a picture that loaded since the last render made the list taller without the reader moving.
  const stick = opts.stick || pin.atBottom;
  const newest = conv.maxSeq;
  if (pin.lastSeq && newest > pin.lastSeq && !stick) {
    const arrived = conv.sorted().filter((m) => m.seq > pin.lastSeq && m.sender !== me && m.kind !== "recall");
    if (arrived.length) pin.unseen = true;
  }
  pin.lastSeq = newest;
  const want = []; // [key, signature, build]
  if (conv.more && conv.messages.size && !conv.messages.has(1)) {
    const words = t(opts.loadingOlder ? "loadingOlder" : "scrollForOlder");
    want.push(["older", words, () => h("div.older", { role: "status" }, words)]);
  } else if (conv.messages.size) {
    want.push(["start", "", () => h("div.older.start", t("startOfConversation"))]);
  }
  let lastDay = "";
  const readMark = (conv.view.read || {})[opts.counterpartSide] || 0;
  const ctx = { ...opts, me, now, readMark };
  for (const msg of conv.sorted()) {
    if (msg.kind === "recall") continue;
    if (msg.kind === "card" || msg.kind === "card_update") {
      const card = conv.cards.get(msg.body.id);
      if (!card || card.seq !== msg.seq) continue; // a card is drawn once, where its latest change is
    }
    const day = dayLabel(msg.ts);
    if (day !== lastDay) {
      want.push(["day:" + day, day, () => h("div.day", day)]);
      lastDay = day;
    }
    want.push(["m:" + msg.seq, messageSignature(msg, conv, ctx), () => renderMessage(msg, conv, ctx)]);
  }
  for (const p of client.pendingFor(conv.id)) {
    const words = p.error ? p.error.words || errorWords(p.error) : "";
    const shows = p.body.kind === "image" ? pictureSignature(p.body, conv.id, opts.pictures) : "";
    want.push(["p:" + p.cmid, words + shows, () => renderPending(p, opts)]);
  }
  if (stick) pin.unseen = false;
  if (!pin.pill) {
    pin.pill = h("div.new-below-wrap", h("button.new-below", { type: "button", onclick: () => toBottom(list) }, t("newBelow")));
  }
  pin.pill.hidden = !pin.unseen;
  const rows = new Map();
  const nodes = want.map(([key, sig, build]) => {
    let row = pin.rows.get(key);
    if (!row || row.sig !== sig) row = { sig, el: build() };
    rows.set(key, row);
    return row.el;
  });
  pin.rows = rows;
  nodes.push(pin.pill);
  // Put the nodes in order, moving only what is out of place; then drop what is no longer shown.
  nodes.forEach((node, i) => {
    if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null);
  });
  while (list.children.length > nodes.length) list.lastElementChild.remove();
  if (stick) toBottom(list);
  else list.scrollTop = list.scrollHeight - fromBottom;
}

/** Everything a message's row shows, so an unchanged row is kept as it is. */
function messageSignature(msg, conv, ctx) {
  const parts = [msg.kind, msg.recalled ? 1 : 0, msg.sender, agentShown(msg, conv, ctx)];
  if (msg.kind === "card" || msg.kind === "card_update") {
    const card = conv.cards.get(msg.body.id);
    parts.push(card.state, card.event, JSON.stringify(card.view), cardSteps(conv, card.id).length);
  } else {
    parts.push(JSON.stringify(msg.body));
    if (msg.kind === "image") parts.push(pictureSignature(msg.body, conv.id, ctx.pictures));
    if (isMine(msg, ctx)) parts.push(tickOf(msg, ctx), msg.sender === ctx.me && msg.cmid && ctx.canRecall(msg) ? 1 : 0);
  }
  return parts.join("|");
}

/** What a row shows of the agents it names (display names and avatars arrive later than messages). */
function agentShown(msg, conv, opts) {
  const names = opts.agents;
  if (!names) return "";
  const shop = conv.view.shop;
  const ids = msg.kind === "system" ? [msg.body && msg.body.agent, msg.body && msg.body.by] : msg.role === "agent" ? [msg.sender] : [];
  return ids.filter(Boolean).map((id) => `${names.name(shop, id) || ""}:${names.avatar(shop, id) || ""}`).join(",");
}

function isMine(msg, opts) {
  return msg.sender === opts.me || (opts.role === "agent" && msg.role === "agent");
}

/**
 * The list's pin state, set up once per list element: `atBottom` follows the reader's scrolling,
 * and while it holds, anything that makes the list taller later (a picture loading, the panel
 * resizing) keeps the newest message in sight.
 */
function pinned(list) {
  if (list._pin) return list._pin;
  const pin = { atBottom: true, conv: null, lastSeq: 0, unseen: false };
  list._pin = pin;
  list.addEventListener("scroll", () => {
    pin.atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    if (pin.atBottom && pin.unseen) {
      pin.unseen = false;
      const wrap = list.querySelector(".new-below-wrap");
      if (wrap) wrap.hidden = true;
    }
  }, { passive: true });
  // `load` does not bubble, but it can be caught on the way down.
  list.addEventListener("load", () => {
    if (pin.atBottom) list.scrollTop = list.scrollHeight;
  }, true);
  if (typeof ResizeObserver !== "undefined") {
    new ResizeObserver(() => {
      if (pin.atBottom) list.scrollTop = list.scrollHeight;
    }).observe(list);
  }
  return pin;
}

function toBottom(list) {
  list.scrollTop = list.scrollHeight;
  const pin = pinned(list);
  pin.atBottom = true;
  pin.unseen = false;
  const wrap = list.querySelector(".new-below-wrap");
  if (wrap) wrap.hidden = true;
}

function renderMessage(msg, conv, opts) {
  // An arbiter reads both parties: the shop on the right, the buyer on the left, each named.
  const mine = isMine(msg, opts) || (opts.role === "arbiter" && msg.role === "agent");
  const dataset = { seq: msg.seq, kind: msg.kind };
  if (msg.kind === "system") return h("div.note", { dataset }, systemWords(msg, conv, opts));
  if (msg.kind === "card" || msg.kind === "card_update") {
    const card = conv.cards.get(msg.body.id);
    return h("div.row.center", { dataset },
      renderCard(card, { role: opts.role, me: opts.me, now: opts.now, steps: cardSteps(conv, card.id) }));
  }
  if (msg.kind === "broadcast") return renderBroadcast(msg, opts, dataset);
  if (msg.recalled) {
    const who = t(msg.sender === opts.me ? "you" : msg.role === "agent" ? "theShop" : "theBuyer");
    return h("div.note.recalled", { dataset }, t("recalledBy", { who }));
  }
  let content;
  if (msg.kind === "text") content = h("div.bubble", msg.body.text);
  else if (msg.kind === "image") content = pictureBubble(msg.body, conv.id, opts.pictures);
  else if (msg.kind === "product") content = h("div.bubble.product-bubble", productCard(msg.body.listing));
  else content = h("div.bubble", t("needsNewer"));
  // The hub's away message: say so, so nobody takes it for a person's answer.
  const meta = h("div.meta", msg.body.auto ? [h("span.auto-tag", t("autoReply")), " · "] : null, clock(msg.ts));
  if (opts.role === "arbiter") {
    const who = msg.role === "agent" ? t("arbSaidShop", { who: agentLabel(msg.sender, conv, opts) }) : t("arbSaidBuyer", { who: msg.sender });
    meta.prepend(h("span.sender", who), " · ");
  }
  if (msg.sender === opts.me || (opts.role === "agent" && msg.role === "agent")) {
    if (opts.role === "agent" && msg.sender !== opts.me) meta.append(" · " + agentLabel(msg.sender, conv, opts));
    meta.append(" · ", status(msg, opts));
    if (msg.sender === opts.me && msg.cmid && opts.canRecall(msg)) {
      meta.append(" ", h("button.link", { type: "button", dataset: { action: "recall", seq: msg.seq },
        "aria-label": t("recallThis") }, t("recall")));
    }
  }
  if (!mine && msg.role === "agent" && opts.agents) {
    // The buyer sees who of the shop answered, by name (never the internal id).
    const name = opts.agents.name(conv.view.shop, msg.sender);
    if (name) meta.prepend(avatarImg(opts.agents, conv.view.shop, msg.sender, 16) || "", h("span.agent-name", name), " · ");
  }
  return h("div.row" + (mine ? ".mine" : ".theirs"), { dataset }, content, meta);
}

function agentLabel(id, conv, opts) {
  return (opts.agents && opts.agents.name(conv.view.shop, id)) || id;
}

/**
 * A shop's message to its followers: marked as such (it went to every follower, not to this buyer
 * alone), with its listing, its follower price (for the buyer, "Buy at this price" until it ends)
 * and, for the buyer, the unfollow that `unsubscribe` carries (the whole request: the widget sends it as it is).
 */
function renderBroadcast(msg, opts, dataset) {
  const b = msg.body || {};
  const shop = opts.shopName || b.shop || "";
  const parts = [h("div.broadcast-tag", t("broadcastTag", { shop }))];
  if (b.text) parts.push(h("div.broadcast-text", b.text));
  if (b.listing) parts.push(productCard(b.listing));
  if (b.offer && b.listing) {
    const price = money(b.offer.price, b.offer.currency);
    const ended = opts.now > b.offer.valid_until;
    parts.push(h("div.broadcast-offer" + (ended ? ".ended" : ""),
      ended ? t("broadcastOfferEnded", { price }) : t("broadcastOffer", { price, until: formatDateTime(b.offer.valid_until) })));
    // The buyer takes the price up with `claim_offer`: the shop's order at this price, then `pay`.
    if (opts.role === "buyer" && !ended && Number.isInteger(b.broadcast)) {
      parts.push(h("button.btn.primary.small.buy-offer", { type: "button", dataset: { action: "claim-offer", broadcast: b.broadcast },
        "aria-label": t("buyAtThisPriceLabel", { title: b.listing.title, price }) }, t("buyAtThisPrice")));
    }
  }
  const meta = h("div.meta", clock(msg.ts));
  if (opts.role === "buyer" && b.unsubscribe) {
    meta.append(" · ", h("button.link.unsubscribe", { type: "button", dataset: { action: "unfollow", shop: b.unsubscribe.shop },
      title: t("unsubscribeLabel", { shop }) }, t("unsubscribe")));
  }
  return h("div.row.theirs.broadcast-row", { dataset }, h("div.bubble.broadcast", parts), meta);
}

/** A hub note in words for this reader: agents by display name; buyers are never shown the
 * shop's internal agent ids (a nameless agent is "another member of the team"). */
function systemWords(msg, conv, opts) {
  const b = msg.body || {};
  if (b.event === "assigned" && b.agent) {
    if (opts.role !== "agent") {
      const name = opts.agents && opts.agents.name(conv.view.shop, b.agent);
      return name ? t("nowAnswering", { agent: name }) : t("teamAnswering");
    }
    const agent = agentLabel(b.agent, conv, opts);
    if (!b.by || b.by === b.agent) return t("tookConv", { agent });
    return t("handedConv", { by: agentLabel(b.by, conv, opts), agent });
  }
  return b.text || "";
}

function tickOf(msg, opts) {
  if (msg.seq <= opts.readMark) return "read";
  return opts.delivered(msg) ? "delivered" : "sent";
}

const TICKS = { read: ["tickRead", "✓✓"], delivered: ["tickDelivered", "✓✓"], sent: ["tickSent", "✓"] };

function status(msg, opts) {
  const tick = tickOf(msg, opts);
  const [key, mark] = TICKS[tick];
  return h("span.tick." + tick, { title: t(key) }, `${mark} ${t(key)}`);
}

function renderPending(p, opts) {
  const content = p.body.kind === "image"
    ? pictureBubble(p.body, p.conv, opts.pictures)
    : p.body.kind === "product" ? h("div.bubble.product-bubble", productCard(p.body.listing)) : h("div.bubble", p.body.text || "");
  const meta = p.error
    ? h("div.meta.failed", t("notSent"), p.error.words || errorWords(p.error), " ",
      h("button.link", { type: "button", dataset: { action: "retry", cmid: p.cmid } }, t("retry")), " ",
      h("button.link", { type: "button", dataset: { action: "discard", cmid: p.cmid } }, t("delete")))
    : h("div.meta", h("span.tick.pending", { title: t("sending") }, "◷ " + t("sending")));
  return h("div.row.mine.pending", { dataset: { cmid: p.cmid } }, content, meta);
}
