// The hub's wire protocol (docs/protocol.md) for browsers: binary msgpack frames,
// requests matched by id, resume with per-conversation cursors and the inbox cursor,
// messages kept by (conv, seq), unacknowledged sends resent with the same cmid.
// Shared by the listing-page widget and the seller back office. The connection state machine
// lives in connection.js, sending and the per-tab unsent queue in queue.js.
import { encode } from "@msgpack/msgpack";
import { CLOSE_DEAD, CLOSE_RECONNECT, Conversation, TIMING, browserOffline, countsAsUnread, detach, mixin,
  randomId } from "./protocol.js";
import { Connection } from "./connection.js";
import { UnsentQueue } from "./queue.js";

export { TIMING, ServerError, Disconnected, tokenExpiry, randomId, closeAction, browserOffline, Conversation,
  countsAsUnread } from "./protocol.js";

/**
 * A connection to the hub that survives network trouble.
 * Events (EventTarget): status, welcome, synced, conversation, message, receipt, typing,
 * presence, pending, tokenerror, fatal. `detail` carries the payload.
 *
 * Status: idle (no token) | connecting | online | reconnecting | offline (the browser has no
 * network: waiting for it) | stopped (stop(), or a close that forbids reconnecting: see `fatal`).
 */
export class ChatClient extends EventTarget {
  constructor({ url, getToken, storageKey = "tradechat", storage = globalThis.localStorage,
    locks = globalThis.navigator?.locks ?? null, timing = {} }) {
    super();
    this.url = url;
    this.getToken = getToken;
    this.storageKey = storageKey;
    this.storage = storage;
    this.timing = { ...TIMING, ...timing };
    this.status = "idle"; // see the class comment
    this.problem = null; // while not online: "token" (getToken failed) or "network"
    this.me = null; // the welcome frame
    this.clockSkew = 0; // server time minus local time, ms
    this.conversations = new Map();
    this.presence = new Map(); // entity -> {status, last_seen}
    this.inboxCursor = null;
    // Unsent messages [{conv, cmid, body, created, user, error}], kept per tab: see "the unsent queue".
    this.tabId = randomId("tab");
    this.pending = [];
    this._locks = locks;
    this._watching = new Set(); // other tabs whose lock we wait for (to take over their queue)
    this._watchAbort = null;
    this._releaseTab = null;
    this._ids = 1;
    this._waiting = new Map();
    this._ws = null;
    this._connecting = false; // waiting for getToken()
    this._attempt = 0;
    this._authRetried = false; // a 4001 was already retried with a fresh token
    this._timers = {};
    this._lastRx = 0;
    this._deadline = 0; // when set: the link is dead if no frame arrives before this time
    this._syncing = 0; // sync requests in flight
    this._stopped = false;
    this._flushing = false;
    this.manualAway = false; // the back office's away switch: stay away even while the tab is visible
    this.onVisibility = () => {
      this.setPresence(this.manualAway || document.hidden ? "away" : "online");
      if (!document.hidden) this._probe(); // a laptop waking up: check the link at once
    };
    this._onOnline = () => {
      if (this._stopped || this.status === "stopped") return;
      this._attempt = 0;
      if (this._ws) this._probe();
      else if (!this._connecting) this._connect();
    };
    this._onOffline = () => {
      if (this._stopped || this.status === "stopped") return;
      if (this._ws) this._drop(this._ws, CLOSE_DEAD, "the browser is offline");
      else if (!this._connecting) this._scheduleReconnect();
      else this._setStatus("offline");
    };
    this._onStorage = (ev) => {
      const prefix = this.storageKey + ":pending:";
      if (!this.me || !ev.key || !ev.newValue || !ev.key.startsWith(prefix)) return;
      if (ev.storageArea && ev.storageArea !== this.storage) return;
      this._watch(ev.key.slice(prefix.length));
    };
  }

  // --- lifecycle ------------------------------------------------------------------------

  start() {
    this._stopped = false;
    this._holdTabLock();
    if (typeof document !== "undefined") document.addEventListener("visibilitychange", this.onVisibility);
    if (typeof window !== "undefined" && window.addEventListener) {
      window.addEventListener("online", this._onOnline);
      window.addEventListener("offline", this._onOffline);
      window.addEventListener("storage", this._onStorage);
    }
    if (!this._locks) this._timers.beat = setInterval(() => this._beat(), this.timing.queueBeatMs);
    if (browserOffline()) this._scheduleReconnect();
    else this._connect();
  }

  stop() {
    this._stopped = true;
    this._clearTimers();
    clearInterval(this._timers.beat);
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      detach(ws);
      try {
        ws.close(1000, "bye");
      } catch {
        /* already closed */
      }
    }
    this._failWaiting();
    if (typeof document !== "undefined") document.removeEventListener("visibilitychange", this.onVisibility);
    if (typeof window !== "undefined" && window.removeEventListener) {
      window.removeEventListener("online", this._onOnline);
      window.removeEventListener("offline", this._onOffline);
      window.removeEventListener("storage", this._onStorage);
    }
    this._watchAbort?.abort();
    this._watchAbort = null;
    this._watching.clear();
    this._releaseTabLock(); // what this tab could not send is now free for another tab to take over
    this._setStatus("stopped");
  }

  /** Drop the connection now and resume on a new one (used on token renewal and dead links). */
  reconnect() {
    if (this._ws) this._drop(this._ws, CLOSE_RECONNECT, "reconnecting");
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

  async _sync() {
    const cursors = {};
    for (const conv of this.conversations.values()) cursors[conv.id] = conv.cursor;
    const frame = { type: "sync", cursors };
    if (this.inboxCursor) frame.inbox = this.inboxCursor;
    // The hub answers in order, so a pong waits behind a long sync: liveness pauses while one runs
    // and the sync's own timeout stands in for it.
    this._syncing += 1;
    let synced;
    try {
      synced = await this.request(frame, 30000);
    } finally {
      this._syncing -= 1;
    }
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

  /**
   * Ask the hub what changed since the inbox cursor: a sync, answered with the changed
   * conversations only. For conversations this connection is not sent live (an agent's colleague's).
   */
  async refreshInbox() {
    if (this.status === "online" && !this._syncing) await this._sync();
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
}

mixin(ChatClient, Connection);
mixin(ChatClient, UnsentQueue);
