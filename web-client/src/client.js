// The hub's wire protocol (docs/protocol.md) for browsers: binary msgpack frames,
// requests matched by id, resume with per-conversation cursors and the inbox cursor,
// messages kept by (conv, seq), unacknowledged sends resent with the same cmid.
// Shared by the listing-page widget and the seller back office.
import { encode, decode } from "@msgpack/msgpack";

// Timings (overridable per client with the `timing` option, e.g. in unit tests).
export const TIMING = {
  requestTimeoutMs: 15000, // a request unanswered this long means a lost connection
  connectTimeoutMs: 10000, // handshake plus `auth`: a dead network may never finish either
  tokenTimeoutMs: 15000, // getToken() that neither resolves nor rejects counts as failed
  // Liveness: after pingIdleMs without any frame, send an application `ping`; if still nothing has
  // arrived deadAfterMs later, the link is dead. Checked every tickMs: a visible tab notices a dead
  // link within pingIdleMs + deadAfterMs + 2 × tickMs (8 s) even when no close event ever comes.
  pingIdleMs: 3000,
  pingIdleHiddenMs: 25000, // a hidden tab pings rarely and probes at once when shown again
  deadAfterMs: 4000,
  tickMs: 500,
  backoffMinMs: 500,
  backoffMaxMs: 30000,
  offlineRetryMs: 30000, // while the browser says offline, try this rarely (the `online` event comes first)
  queueBeatMs: 10000, // without Web Locks: a tab rewrites its unsent queue this often while it lives
  queueStaleMs: 30000, // ... and a queue not rewritten this long belongs to a closed tab
};
// Standard close codes that invite a reconnect (docs/protocol.md, "Close codes"); 4500–4999 do too.
// 1000, 1005 (no code) and 1015 (TLS) are added here: a hub or proxy restarting may close normally,
// and a browser cannot tell a transient TLS failure from a broken network; both back off.
const RETRY_CLOSES = new Set([1000, 1001, 1005, 1006, 1011, 1012, 1013, 1015]);
// Close codes this client gives itself: 4900 our own reconnect, 4901 a dead link (no answer, the
// browser offline, a connect that never finished). Both are in the "retry" range.
const CLOSE_RECONNECT = 4900;
const CLOSE_DEAD = 4901;
// An `auth` refused with these errors is followed by this close (docs/protocol.md, "Authentication").
const AUTH_ERROR_CLOSE = { 2002: 4001, 2003: 4002, 5002: 4502 };
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
 * or "stop" (4000–4499, 1009 and other codes the table does not invite back). The client retries
 * a 4001 once with a freshly fetched token (see ChatClient._onClose) before it stops.
 */
export function closeAction(code) {
  if (code === 4002) return "renew";
  if (RETRY_CLOSES.has(code) || (code >= 4500 && code <= 4999)) return "retry";
  return "stop";
}

/** Whether the browser says it has no network (navigator.onLine false); false where unknown. */
export function browserOffline() {
  return typeof navigator !== "undefined" && navigator.onLine === false;
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

  async _connect() {
    if (this._stopped || this._ws || this._connecting) return;
    clearTimeout(this._timers.reconnect);
    delete this._timers.reconnect;
    this._setStatus(this._attempt === 0 && !this.me ? "connecting" : "reconnecting");
    this._connecting = true;
    let token;
    try {
      token = await withTimeout(Promise.resolve().then(() => this.getToken()), this.timing.tokenTimeoutMs);
    } catch (err) {
      this._connecting = false;
      if (this._stopped) return;
      // The token could not be had (the page's function rejected or hung): try again with backoff.
      this.problem = "token";
      this._emit("tokenerror", err);
      this._scheduleReconnect();
      return;
    }
    this._connecting = false;
    if (this._stopped || this._ws) return;
    if (!token) {
      this._setStatus("idle"); // signed out: nothing to connect with until the page identifies again
      return;
    }
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    ws.onopen = () => this._onOpen(ws, token);
    ws.onmessage = (ev) => this._onFrame(ws, ev.data);
    ws.onclose = (ev) => this._onClose(ws, ev.code);
    ws.onerror = () => {};
    // A handshake on a dead network may never finish, nor fail.
    this._timers.connect = setTimeout(() => this._drop(ws, CLOSE_DEAD, "connect timed out"),
      this.timing.connectTimeoutMs);
  }

  async _onOpen(ws, token) {
    if (ws !== this._ws) return;
    try {
      const welcome = await this.request({ type: "auth", token }, this.timing.connectTimeoutMs);
      clearTimeout(this._timers.connect);
      this.me = welcome;
      this.clockSkew = welcome.server_time - Date.now();
      this._emit("welcome", welcome);
      this._lastRx = Date.now();
      this._deadline = 0;
      this._timers.live = setInterval(() => this._checkLive(ws), this.timing.tickMs);
      const exp = tokenExpiry(token);
      if (exp) {
        // No in-band renewal: fetch a fresh token and reconnect shortly before this one expires.
        const wait = Math.max(5000, exp * 1000 - this.now() - 60000);
        this._timers.renew = setTimeout(() => this.reconnect(), wait);
      }
      await this._sync();
      this._attempt = 0;
      this._authRetried = false;
      this.problem = null;
      this._setStatus("online");
      if (this.manualAway || (typeof document !== "undefined" && document.hidden)) this.setPresence("away");
      this._adoptOrphans();
      this._flush();
    } catch (err) {
      // An `auth` refused with 2002/2003/5002 is followed by close 4001/4002/4502: act on that
      // code now rather than race the close frame; anything else resumes on a new connection.
      const code = (err instanceof ServerError && AUTH_ERROR_CLOSE[err.code]) || CLOSE_RECONNECT;
      this._drop(ws, code, "resume failed");
    }
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

  /**
   * The liveness check, every tickMs while authenticated: a silent link gets an application
   * `ping`; a link still silent at the deadline is dropped as dead (its close event may come a
   * minute later, or never).
   */
  _checkLive(ws) {
    if (ws !== this._ws) return;
    const now = Date.now();
    if (this._syncing) {
      this._deadline = 0;
      this._lastRx = now;
      return;
    }
    if (this._deadline) {
      if (now >= this._deadline) this._drop(ws, CLOSE_DEAD, "no answer from the hub");
      return;
    }
    const hidden = typeof document !== "undefined" && document.hidden;
    if (now - this._lastRx >= (hidden ? this.timing.pingIdleHiddenMs : this.timing.pingIdleMs)) this._ping(ws);
  }

  /** Ping now, and call the link dead if nothing at all arrives within deadAfterMs. */
  _ping(ws) {
    if (this._deadline) return;
    this._deadline = Date.now() + this.timing.deadAfterMs;
    try {
      ws.send(encode({ type: "ping", id: this._ids++ })); // the pong is just another frame received
    } catch {
      this._drop(ws, CLOSE_DEAD, "send failed");
    }
  }

  /** Check the link at once (the tab was shown again, the browser is back online). */
  _probe() {
    const ws = this._ws;
    if (ws && ws.readyState === WS_OPEN && this.me && this._timers.live) this._ping(ws);
  }

  _onClose(ws, code) {
    if (ws !== this._ws) return;
    this._ws = null;
    detach(ws);
    this._clearTimers();
    this._failWaiting();
    if (this._stopped) return;
    let action = closeAction(code);
    // An invalid token (4001) may be a stale one the page cached: fetch a fresh one once. Refused
    // again, it is final until the page identifies anew.
    if (code === 4001 && !this._authRetried) {
      this._authRetried = true;
      action = "renew";
    }
    if (action === "stop") {
      this._setStatus("stopped");
      this._emit("fatal", { code });
      return;
    }
    this.problem = "network";
    // Our own reconnect (4900) and a token renewal (4001 once, 4002: _connect asks getToken for a
    // fresh token) go at once; a repeat of either backs off like any other retry.
    this._scheduleReconnect(code === CLOSE_RECONNECT || action === "renew");
  }

  /** Treat `ws` as closed with `code` now, without waiting for a close event that may never come. */
  _drop(ws, code, reason) {
    if (!ws || ws !== this._ws) return;
    this._onClose(ws, code);
    try {
      ws.close(CLOSE_RECONNECT, reason);
    } catch {
      /* already closing */
    }
  }

  _failWaiting() {
    const err = new Disconnected();
    for (const { reject, timer } of this._waiting.values()) {
      clearTimeout(timer);
      reject(err);
    }
    this._waiting.clear();
  }

  /**
   * Reconnect after an exponential backoff with full jitter (at once if `soon` and the first attempt).
   * While the browser says it is offline, wait for its `online` event (or offlineRetryMs).
   */
  _scheduleReconnect(soon = false) {
    clearTimeout(this._timers.reconnect);
    const offline = browserOffline();
    this._setStatus(offline ? "offline" : "reconnecting");
    const cap = Math.min(this.timing.backoffMaxMs, this.timing.backoffMinMs * 2 ** this._attempt);
    let delay = soon && this._attempt === 0 ? 0 : Math.random() * cap;
    if (offline) delay = Math.max(delay, this.timing.offlineRetryMs);
    this._attempt += 1;
    this._timers.reconnect = setTimeout(() => {
      delete this._timers.reconnect;
      this._connect();
    }, delay);
  }

  _clearTimers() {
    clearTimeout(this._timers.renew);
    clearTimeout(this._timers.reconnect);
    clearTimeout(this._timers.connect);
    clearInterval(this._timers.live);
    clearTimeout(this._timers.resync);
    this._timers = this._timers.beat ? { beat: this._timers.beat } : {};
    this._deadline = 0;
  }

  // --- frames ---------------------------------------------------------------------------

  /** Send a request and wait for its reply; an `error` reply rejects with ServerError. */
  request(frame, timeout = this.timing.requestTimeoutMs) {
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
    if (ws !== this._ws) return;
    this._lastRx = Date.now(); // any frame proves the link alive
    this._deadline = 0;
    if (!(data instanceof ArrayBuffer)) return;
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
    const item = { conv: convId, cmid, body, created: this.now(), user: this.me ? this.me.user : null, error: null };
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

  // --- the unsent queue, one per tab ----------------------------------------------------
  //
  // Each tab (each page load, each ChatClient) keeps its unsent messages under its own key,
  // `<storageKey>:pending:<tabId>`, and holds the Web Lock `<storageKey>:tab:<tabId>` while it
  // lives, so tabs never overwrite each other's queue. A queue whose lock is free belongs to a
  // tab that was closed, reloaded or stopped: a live tab of the same user takes it over while
  // holding that lock, so exactly one tab does. Live tabs wait on the locks of the queues they see
  // (found at every resume and through `storage` events), so a queue left by a reload or a closed
  // tab is taken over at once. The taker writes its own queue before it deletes the orphan: a
  // crash in between leaves a copy with the same cmid, which the hub stores once (never a loss).
  // Without Web Locks, a tab rewrites its queue every queueBeatMs and a queue older than
  // queueStaleMs is taken over. The queue of the previous version (`<storageKey>:pending`, shared
  // by all tabs) is taken over the same way.

  _queueKey(tab = this.tabId) {
    return `${this.storageKey}:pending:${tab}`;
  }

  _lockName(tab) {
    return `${this.storageKey}:tab:${tab}`;
  }

  _holdTabLock() {
    if (!this._locks || this._releaseTab) return;
    const held = new Promise((release) => {
      this._releaseTab = release;
    });
    this._locks.request(this._lockName(this.tabId), () => held).catch(() => {});
  }

  _releaseTabLock() {
    if (this._releaseTab) this._releaseTab();
    this._releaseTab = null;
  }

  /** Look for queues left by other tabs (after every resume: we know who we are by then). */
  _adoptOrphans() {
    if (!this.me || this._stopped) return;
    const prefix = this.storageKey + ":pending:";
    for (const key of storageKeys(this.storage)) {
      if (key === this.storageKey + ":pending") this._adoptLegacy(key);
      else if (key.startsWith(prefix)) this._watch(key.slice(prefix.length));
    }
  }

  /** Take over tab `tab`'s queue once that tab is gone (at once if it already is). */
  _watch(tab) {
    if (tab === this.tabId || this._watching.has(tab) || this._stopped) return;
    if (!this._locks) {
      const queue = readQueue(this.storage, this._queueKey(tab));
      if (queue && Date.now() - (queue.beat || 0) > this.timing.queueStaleMs) this._adopt(this._queueKey(tab));
      return;
    }
    this._watching.add(tab);
    if (!this._watchAbort) this._watchAbort = new AbortController();
    this._locks.request(this._lockName(tab), { signal: this._watchAbort.signal }, () => {
      this._watching.delete(tab);
      if (!this._stopped) this._adopt(this._queueKey(tab));
    }).catch(() => this._watching.delete(tab));
  }

  _adoptLegacy(key) {
    if (!this._locks) {
      this._adopt(key);
      return;
    }
    this._locks.request(this.storageKey + ":legacy-pending", { ifAvailable: true }, (lock) => {
      if (lock && !this._stopped) this._adopt(key);
    }).catch(() => {});
  }

  /** Move the items of our user from the queue under `key` into ours (run holding its owner's lock). */
  _adopt(key) {
    const queue = readQueue(this.storage, key);
    if (!queue || !this.me) return;
    const mine = [];
    const left = [];
    for (const item of queue.items) {
      if (!item || !item.conv || !item.cmid) continue;
      (item.user && item.user !== this.me.user ? left : mine).push(item);
    }
    const known = new Set(this.pending.map((p) => p.cmid));
    const fresh = mine.filter((item) => !known.has(item.cmid));
    if (fresh.length) {
      for (const item of fresh) this.pending.push({ ...item, user: this.me.user, error: null });
      // In the order they were written (the flush sends the first unsent one first).
      this.pending.sort((a, b) => (a.created || 0) - (b.created || 0));
      this._savePending();
    }
    try {
      if (left.length) this.storage.setItem(key, JSON.stringify({ beat: 0, items: left }));
      else this.storage.removeItem(key);
    } catch {
      /* storage blocked: the copy left behind has the same cmids */
    }
    if (fresh.length) {
      this._emit("pending", null);
      this._flush();
    }
  }

  /** Without Web Locks: show that this tab is alive by rewriting its queue, and look for orphans. */
  _beat() {
    if (this.pending.length) this._savePending();
    this._adoptOrphans();
  }

  _savePending() {
    try {
      if (!this.pending.length) {
        this.storage.removeItem(this._queueKey());
        return;
      }
      const items = this.pending.map(({ conv, cmid, body, created, user }) => ({ conv, cmid, body, created, user }));
      this.storage.setItem(this._queueKey(), JSON.stringify({ beat: Date.now(), items }));
    } catch {
      /* storage full or blocked: pending messages then live as long as the page */
    }
  }
}

/** A queue in storage: `{beat, items}`, or the previous version's bare array. */
function readQueue(storage, key) {
  try {
    const raw = JSON.parse(storage.getItem(key) || "null");
    if (Array.isArray(raw)) return { beat: 0, items: raw };
    if (raw && Array.isArray(raw.items)) return raw;
  } catch {
    /* unreadable: treat as empty */
  }
  return null;
}

function storageKeys(storage) {
  const keys = [];
  try {
    for (let i = 0; i < storage.length; i++) keys.push(storage.key(i));
  } catch {
    /* storage blocked */
  }
  return keys;
}

/** Forget a socket's handlers: a dropped socket's late events must not reach the client. */
function detach(ws) {
  ws.onopen = null;
  ws.onmessage = null;
  ws.onclose = null;
  ws.onerror = null;
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("timed out")), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Whether a message from the other side counts in the unread badge (protocol: read marks). */
export function countsAsUnread(msg) {
  return !msg.recalled && msg.kind !== "recall" && msg.kind !== "card_update";
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
