// The hub's wire protocol (docs/protocol.md) for browsers: binary msgpack frames,
// requests matched by id, resume with per-conversation cursors and the inbox cursor,
// messages kept by (conv, seq), unacknowledged sends resent with the same cmid.
// Shared by the listing-page widget and the seller back office.
import { encode, decode } from "@msgpack/msgpack";

const REQUEST_TIMEOUT_MS = 15000;
const PING_EVERY_MS = 25000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30000;
// Standard close codes that invite a reconnect (docs/protocol.md, "Close codes"); 4500–4999 do too.
const RETRY_CLOSES = new Set([1001, 1006, 1011, 1012, 1013]);
const WS_OPEN = 1; // WebSocket.OPEN, without needing a WebSocket global (node unit tests have none)

export class ServerError extends Error {
  constructor(frame) {
    super(frame.message || `error ${frame.code}`);
    this.code = frame.code;
    this.details = frame.details ?? null;
  }
}

export class Disconnected extends Error {
  constructor() {
    super("the connection was lost");
    this.code = "disconnected";
  }
}

/** Seconds since the epoch at which a JWT expires (its payload is read, not verified). */
export function tokenExpiry(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part)).exp || null;
  } catch {
    return null;
  }
}

export function randomId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return prefix + "-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * What to do when the connection closed with `code` (docs/protocol.md, "Close codes"):
 * "retry" (reconnect with backoff, then resume), "renew" (fetch a fresh token, then reconnect)
 * or "stop" (4000–4499, 1009 and other codes the table does not invite back).
 */
export function closeAction(code) {
  if (code === 4002) return "renew";
  if (RETRY_CLOSES.has(code) || (code >= 4500 && code <= 4999)) return "retry";
  return "stop";
}

/** One conversation as this client knows it: the server's view plus the messages it holds. */
export class Conversation {
  constructor(view) {
    this.id = view.id;
    this.view = view;
    this.messages = new Map(); // seq -> msg
    this.cards = new Map(); // order/transfer id -> latest card body (state and view)
    this.more = true; // older messages may exist below what we hold
    this.typingUntil = 0;
    // The resume cursor sent in `sync`: every seq in (start, cursor] is held, where start is the view's
    // last_seq when the conversation was first learned of (0 when first seen through a live msg). It
    // never jumps over a hole: an ack's seq can come before a lower msg from the other side.
    this.cursor = view.last_seq || 0;
  }
  /** Hold a message (a msg, a history entry or an acked send) and move the cursor over what is now contiguous. */
  hold(msg) {
    this.messages.set(msg.seq, msg);
    while (this.messages.has(this.cursor + 1)) this.cursor += 1;
  }
  get maxSeq() {
    let max = 0;
    for (const seq of this.messages.keys()) if (seq > max) max = seq;
    return max;
  }
  /** The lowest seq of the unbroken run of messages ending at the newest one we hold. */
  get oldestContiguous() {
    let seq = this.maxSeq;
    if (!seq) return 0;
    while (this.messages.has(seq - 1)) seq -= 1;
    return seq;
  }
  sorted() {
    return [...this.messages.values()].sort((a, b) => a.seq - b.seq);
  }
}

/**
 * A connection to the hub that survives network trouble.
 * Events (EventTarget): status, welcome, synced, conversation, message, receipt, typing,
 * presence, pending, fatal. `detail` carries the payload.
 */
export class ChatClient extends EventTarget {
  constructor({ url, getToken, storageKey = "tradechat", storage = globalThis.localStorage }) {
    super();
    this.url = url;
    this.getToken = getToken;
    this.storageKey = storageKey;
    this.storage = storage;
    this.status = "idle"; // idle | connecting | online | reconnecting | stopped
    this.me = null; // the welcome frame
    this.clockSkew = 0; // server time minus local time, ms
    this.conversations = new Map();
    this.presence = new Map(); // entity -> {status, last_seen}
    this.inboxCursor = null;
    this.pending = this._loadPending(); // [{conv, cmid, body, created, error}]
    this._ids = 1;
    this._waiting = new Map();
    this._ws = null;
    this._attempt = 0;
    this._timers = {};
    this._stopped = false;
    this._flushing = false;
    this.manualAway = false; // the back office's away switch: stay away even while the tab is visible
    this.onVisibility = () => this.setPresence(this.manualAway || document.hidden ? "away" : "online");
  }

  // --- lifecycle ------------------------------------------------------------------------

  start() {
    this._stopped = false;
    this._connect();
    if (typeof document !== "undefined") document.addEventListener("visibilitychange", this.onVisibility);
  }

  stop() {
    this._stopped = true;
    this._clearTimers();
    if (this._ws) this._ws.close(1000, "bye");
    this._setStatus("stopped");
  }

  /** Drop the connection now and resume on a new one (used on token renewal and dead pings). */
  reconnect() {
    if (this._ws) this._ws.close(4900, "reconnecting");
  }

  now() {
    return Date.now() + this.clockSkew;
  }

  _setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this._emit("status", status);
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  async _connect() {
    this._clearTimers();
    this._setStatus(this._attempt === 0 && !this.me ? "connecting" : "reconnecting");
    let token;
    try {
      token = await this.getToken();
    } catch (err) {
      this._emit("tokenerror", err);
      this._scheduleReconnect();
      return;
    }
    if (this._stopped) return;
    if (!token) {
      this._setStatus("idle");
      return;
    }
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    ws.onopen = () => this._onOpen(ws, token);
    ws.onmessage = (ev) => this._onFrame(ws, ev.data);
    ws.onclose = (ev) => this._onClose(ws, ev.code);
    ws.onerror = () => {};
  }

  async _onOpen(ws, token) {
    try {
      const welcome = await this.request({ type: "auth", token });
      this.me = welcome;
      this.clockSkew = welcome.server_time - Date.now();
      this._emit("welcome", welcome);
      const exp = tokenExpiry(token);
      if (exp) {
        // No in-band renewal: fetch a fresh token and reconnect shortly before this one expires.
        const wait = Math.max(5000, exp * 1000 - this.now() - 60000);
        this._timers.renew = setTimeout(() => this.reconnect(), wait);
      }
      await this._sync();
      this._attempt = 0;
      this._setStatus("online");
      if (this.manualAway || (typeof document !== "undefined" && document.hidden)) this.setPresence("away");
      this._timers.ping = setInterval(() => this._ping(), PING_EVERY_MS);
      this._flush();
    } catch (err) {
      if (ws === this._ws && ws.readyState === WS_OPEN) ws.close(4900, "resume failed");
    }
  }

  async _sync() {
    const cursors = {};
    for (const conv of this.conversations.values()) cursors[conv.id] = conv.cursor;
    const frame = { type: "sync", cursors };
    if (this.inboxCursor) frame.inbox = this.inboxCursor;
    const synced = await this.request(frame, 60000);
    if (synced.full) {
      const ids = new Set(synced.conversations.map((v) => v.id));
      for (const id of [...this.conversations.keys()]) if (!ids.has(id)) this.conversations.delete(id);
    }
    for (const view of synced.conversations) this._view(view);
    this.inboxCursor = synced.inbox;
    // Page forward what was not pushed: beyond SYNC_LIMIT, or from 0 for a conversation first seen live.
    for (const conv of this.conversations.values()) {
      if (conv.view.last_seq > conv.cursor) await this.catchUp(conv.id);
    }
    this._emit("synced", synced);
  }

  /** A conversation we have no view of appeared (a new chat while live): sync again to get it. */
  _resyncSoon() {
    if (this._timers.resync) return;
    this._timers.resync = setTimeout(async () => {
      delete this._timers.resync;
      try {
        await this._sync();
      } catch {
        /* the next reconnect syncs anyway */
      }
    }, 150);
  }

  async _ping() {
    try {
      await this.request({ type: "ping" }, 10000);
    } catch {
      this.reconnect();
    }
  }

  _onClose(ws, code) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._clearTimers();
    const err = new Disconnected();
    for (const { reject, timer } of this._waiting.values()) {
      clearTimeout(timer);
      reject(err);
    }
    this._waiting.clear();
    if (this._stopped) return;
    const action = closeAction(code);
    if (action === "stop") {
      this._setStatus("stopped");
      this._emit("fatal", { code });
      return;
    }
    // Our own reconnect (4900) and a token renewal (4002: _connect asks getToken for a fresh token)
    // go at once; a repeat of either backs off like any other retry.
    this._scheduleReconnect(code === 4900 || action === "renew");
  }

  /** Reconnect after an exponential backoff with full jitter (at once if `soon` and the first attempt). */
  _scheduleReconnect(soon = false) {
    this._setStatus("reconnecting");
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this._attempt);
    const delay = soon && this._attempt === 0 ? 0 : Math.random() * cap;
    this._attempt += 1;
    this._timers.reconnect = setTimeout(() => this._connect(), delay);
  }

  _clearTimers() {
    clearTimeout(this._timers.renew);
    clearTimeout(this._timers.reconnect);
    clearInterval(this._timers.ping);
    clearTimeout(this._timers.resync);
    this._timers = {};
  }

  // --- frames ---------------------------------------------------------------------------

  /** Send a request and wait for its reply; an `error` reply rejects with ServerError. */
  request(frame, timeout = REQUEST_TIMEOUT_MS) {
    const ws = this._ws;
    if (!ws || ws.readyState !== WS_OPEN) return Promise.reject(new Disconnected());
    const id = this._ids++;
    const clean = { id };
    for (const [k, v] of Object.entries(frame)) if (v !== undefined && v !== null) clean[k] = v;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._waiting.delete(id);
        reject(new Disconnected());
        this.reconnect(); // a hub that does not answer is treated as a lost connection
      }, timeout);
      this._waiting.set(id, { resolve, reject, timer });
      ws.send(encode(clean));
    });
  }

  _onFrame(ws, data) {
    if (ws !== this._ws || !(data instanceof ArrayBuffer)) return;
    let frame;
    try {
      frame = decode(new Uint8Array(data));
    } catch {
      return;
    }
    if (frame.re !== undefined && frame.re !== null && this._waiting.has(frame.re)) {
      const { resolve, reject, timer } = this._waiting.get(frame.re);
      this._waiting.delete(frame.re);
      clearTimeout(timer);
      if (frame.type === "error") reject(new ServerError(frame));
      else resolve(frame);
      return;
    }
    switch (frame.type) {
      case "msg":
        this._message(frame);
        break;
      case "receipt":
        this._receipt(frame);
        break;
      case "typing": {
        const conv = this.conversations.get(frame.conv);
        if (conv) conv.typingUntil = frame.active ? Date.now() + 6000 : 0;
        this._emit("typing", frame);
        break;
      }
      case "presence":
        this.presence.set(frame.entity, { status: frame.status, last_seen: frame.last_seen });
        this._emit("presence", frame);
        break;
      case "error":
        if (frame.code === 2003 || frame.code === 2002) this._emit("autherror", frame);
        break;
      default:
        break; // unknown frame types are ignored, as the protocol asks
    }
  }

  // --- state ----------------------------------------------------------------------------

  _view(view) {
    let conv = this.conversations.get(view.id);
    if (!conv) {
      conv = new Conversation(view);
      this.conversations.set(view.id, conv);
    } else {
      conv.view = view;
    }
    if (view.last_message) this._store(conv, view.last_message, false);
    this._emit("conversation", conv);
    return conv;
  }

  /** Keep one message (deduplicated by seq); returns true if it was new. */
  _store(conv, msg, live) {
    const had = conv.messages.get(msg.seq);
    if (had && !had.pending && (had.recalled || !msg.recalled)) return false;
    conv.hold(msg);
    if (msg.kind === "recall" && msg.body && msg.body.seq) {
      const target = conv.messages.get(msg.body.seq);
      if (target) conv.messages.set(target.seq, { ...target, recalled: true, body: {} });
    }
    if ((msg.kind === "card" || msg.kind === "card_update") && msg.body && msg.body.id) {
      const prev = conv.cards.get(msg.body.id);
      if (!prev || (msg.body.event || 0) >= (prev.event || 0)) conv.cards.set(msg.body.id, { ...msg.body, seq: msg.seq });
    }
    if (msg.seq > conv.view.last_seq) {
      conv.view = { ...conv.view, last_seq: msg.seq, last_message: msg };
      if (live && !this.isMine(msg) && countsAsUnread(msg)) conv.view = { ...conv.view, unread: conv.view.unread + 1 };
    } else if (conv.view.last_message && conv.view.last_message.seq === msg.seq) {
      conv.view = { ...conv.view, last_message: msg };
    }
    if (msg.kind === "system" && msg.body && msg.body.event === "assigned") {
      conv.view = { ...conv.view, agent: msg.body.agent };
    }
    return true;
  }

  _message(msg) {
    let conv = this.conversations.get(msg.conv);
    if (!conv) {
      // A conversation we have no view of yet (new while we are live): keep the message; the
      // view arrives with the next sync, or from `open`.
      conv = new Conversation({ id: msg.conv, buyer: "", shop: "", listing: null, agent: null, last_seq: 0,
        unread: 0, read: { buyer: 0, shop: 0 }, created_at: msg.ts, last_message: null });
      this.conversations.set(msg.conv, conv);
      this._resyncSoon();
    }
    // A pushed copy of our own pending message proves it was stored.
    if (msg.cmid && this.isMine(msg)) this._settle(msg.conv, msg.cmid);
    if (this._store(conv, msg, true)) {
      if (msg.sender !== "system" && !this.isMine(msg)) conv.typingUntil = 0;
      this._emit("message", { conv, msg });
      this._emit("conversation", conv);
    }
  }

  _receipt(frame) {
    const conv = this.conversations.get(frame.conv);
    if (!conv) return;
    const read = { ...conv.view.read, [frame.side]: Math.max(conv.view.read?.[frame.side] || 0, frame.seq) };
    conv.view = { ...conv.view, read };
    if (frame.unread !== undefined && frame.unread !== null) conv.view = { ...conv.view, unread: frame.unread };
    this._emit("receipt", frame);
    this._emit("conversation", conv);
  }

  isMine(msg) {
    return !!this.me && msg.sender === this.me.user;
  }

  mySide() {
    return this.me && this.me.role === "agent" ? "shop" : "buyer";
  }

  totalUnread() {
    let n = 0;
    for (const conv of this.conversations.values()) n += conv.view.unread || 0;
    return n;
  }

  // --- requests -------------------------------------------------------------------------

  async open(shop, listing, listingToken = null) {
    const reply = await this.request({ type: "open", shop, listing, listing_token: listingToken });
    return this._view(reply.conversation);
  }

  /** Load the page of history just below what we hold (or the latest page). */
  async loadOlder(convId, limit = 30) {
    const conv = this.conversations.get(convId);
    const before = conv.oldestContiguous || conv.view.last_seq + 1;
    const page = await this.request({ type: "history", conv: convId, before, limit });
    for (const msg of page.messages) this._store(conv, msg, false);
    conv.more = page.more;
    this._emit("conversation", conv);
    return page;
  }

  /** Fetch everything after the resume cursor (filling any hole below a held message too). */
  async catchUp(convId) {
    const conv = this.conversations.get(convId);
    for (;;) {
      const after = conv.cursor;
      const page = await this.request({ type: "history", conv: convId, after, limit: 200 });
      for (const msg of page.messages) this._store(conv, msg, false);
      if (!page.more || conv.cursor === after) break; // a page that moves nothing is left to the next resume
    }
    this._emit("conversation", conv);
  }

  markRead(convId) {
    const conv = this.conversations.get(convId);
    if (!conv || this.status !== "online") return;
    const side = this.mySide();
    const seq = conv.maxSeq;
    if (!seq || (conv.view.read?.[side] || 0) >= seq && !conv.view.unread) return;
    conv.view = { ...conv.view, unread: 0, read: { ...conv.view.read, [side]: seq } };
    this._emit("conversation", conv);
    this.request({ type: "read", conv: convId, seq }).catch(() => {});
  }

  typing(convId, active) {
    if (this.status !== "online") return;
    const ws = this._ws;
    ws.send(encode({ type: "typing", conv: convId, active }));
  }

  setPresence(status) {
    this.wantedPresence = status;
    if (this.status === "online") this.request({ type: "presence", status }).catch(() => {});
  }

  recall(convId, seq) {
    return this.request({ type: "recall", conv: convId, seq });
  }

  /** A money command; `key` must be kept by the caller for retries of the same action. */
  money(frame) {
    return this.request(frame, 30000);
  }

  /** The shop's response figures, computed by the hub (agents only). */
  stats(days = 7) {
    return this.request({ type: "stats", days });
  }

  // --- sending --------------------------------------------------------------------------

  /** Queue a message: it shows as pending at once and is sent (and resent) until acked. */
  send(convId, body, { cmid = randomId("w"), auto = false } = {}) {
    if (auto) body = { ...body, auto: true }; // the hub leaves auto-replies out of response figures
    const item = { conv: convId, cmid, body, created: this.now(), error: null };
    this.pending.push(item);
    this._savePending();
    this._emit("pending", item);
    this._flush();
    return item;
  }

  pendingFor(convId) {
    return this.pending.filter((p) => p.conv === convId);
  }

  discard(cmid) {
    this.pending = this.pending.filter((p) => p.cmid !== cmid);
    this._savePending();
    this._emit("pending", null);
  }

  retry(cmid) {
    const item = this.pending.find((p) => p.cmid === cmid);
    if (item) item.error = null;
    this._flush();
  }

  async _flush() {
    if (this._flushing) return;
    this._flushing = true;
    try {
      while (this.status === "online") {
        const item = this.pending.find((p) => !p.error);
        if (!item) break;
        try {
          const ack = await this.request({ type: "send", conv: item.conv, cmid: item.cmid, body: item.body });
          this._acked(item, ack);
        } catch (err) {
          if (err instanceof Disconnected) break; // resent with the same cmid after the resume
          if (err.code === 4001) {
            await sleep((err.details && err.details.retry_after_ms) || 1000);
          } else if (err.code === 5001 || err.code === 5002) {
            await sleep(2000);
          } else {
            item.error = err;
            this._emit("pending", item);
          }
        }
      }
    } finally {
      this._flushing = false;
    }
  }

  _acked(item, ack) {
    const { kind, ...body } = item.body;
    const conv = this.conversations.get(item.conv);
    this._settle(item.conv, item.cmid);
    if (conv) {
      const msg = { type: "msg", conv: item.conv, seq: ack.seq, sender: this.me.user, role: this.me.role, kind,
        body, ts: ack.ts, cmid: item.cmid, recalled: false };
      if (this._store(conv, msg, false)) this._emit("message", { conv, msg });
      this._emit("conversation", conv);
    }
  }

  _settle(convId, cmid) {
    const before = this.pending.length;
    this.pending = this.pending.filter((p) => !(p.conv === convId && p.cmid === cmid));
    if (this.pending.length !== before) {
      this._savePending();
      this._emit("pending", null);
    }
  }

  _loadPending() {
    try {
      return JSON.parse(this.storage.getItem(this.storageKey + ":pending") || "[]");
    } catch {
      return [];
    }
  }

  _savePending() {
    try {
      const keep = this.pending.map(({ conv, cmid, body, created }) => ({ conv, cmid, body, created, error: null }));
      this.storage.setItem(this.storageKey + ":pending", JSON.stringify(keep));
    } catch {
      /* storage full or blocked: pending messages then live as long as the page */
    }
  }
}

/** Whether a message from the other side counts in the unread badge (protocol: read marks). */
export function countsAsUnread(msg) {
  return !msg.recalled && msg.kind !== "recall" && msg.kind !== "card_update";
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
