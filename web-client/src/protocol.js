// The wire protocol's pieces shared by the client's modules (docs/protocol.md): timings, close
// codes and what they invite, errors, token expiry, and one conversation's messages and cursor.

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
export const CLOSE_RECONNECT = 4900;
export const CLOSE_DEAD = 4901;
// An `auth` refused with these errors is followed by this close (docs/protocol.md, "Authentication").
export const AUTH_ERROR_CLOSE = { 2002: 4001, 2003: 4002, 5002: 4502 };
export const WS_OPEN = 1; // WebSocket.OPEN, without needing a WebSocket global (node unit tests have none)

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

/** Forget a socket's handlers: a dropped socket's late events must not reach the client. */
export function detach(ws) {
  ws.onopen = null;
  ws.onmessage = null;
  ws.onclose = null;
  ws.onerror = null;
}

export function withTimeout(promise, ms) {
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

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}


/** Copy the methods of `source` (a class used as a bag of methods) onto `target`'s prototype. */
export function mixin(target, source) {
  for (const name of Object.getOwnPropertyNames(source.prototype)) {
    if (name !== "constructor") Object.defineProperty(target.prototype, name, Object.getOwnPropertyDescriptor(source.prototype, name));
  }
}
