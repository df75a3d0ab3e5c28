// A small in-memory stand-in for the hub, for node unit tests of client.js: it keeps a message log
// per conversation and answers auth, sync (pushing missed messages, at most syncLimit), history,
// send and ping over fake WebSocket objects installed as globalThis.WebSocket. No network.
import { afterEach, mock } from "node:test";
import { encode, decode } from "@msgpack/msgpack";

export class FakeHub {
  constructor({ user = "b1", role = "buyer", syncLimit = 500 } = {}) {
    this.user = user;
    this.role = role;
    this.syncLimit = syncLimit;
    this.logs = new Map(); // conv -> [msg], msg.seq === index + 1
    this.requests = []; // every request frame, in arrival order
    this.sockets = [];
    this.overrides = {}; // type -> (socket, frame, reply) returning true when it answered the request itself
    const hub = this;
    this.WebSocket = class FakeSocket {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        hub.sockets.push(this);
        setImmediate(() => {
          this.readyState = 1;
          this.onopen?.();
        });
      }
      send(bytes) {
        if (this.readyState !== 1) return;
        const frame = decode(bytes);
        setImmediate(() => hub._handle(this, frame));
      }
      close(code = 1000) {
        hub.closeSocket(this, code);
      }
    };
  }

  get socket() {
    return this.sockets[this.sockets.length - 1];
  }

  /** Store a message (not delivered to anyone) and return it. */
  add(conv, sender, text, cmid = null) {
    if (!this.logs.has(conv)) this.logs.set(conv, []);
    const log = this.logs.get(conv);
    const msg = { type: "msg", conv, seq: log.length + 1, sender, role: sender === this.user ? this.role : "agent",
      kind: "text", body: { text }, ts: 1718000000000 + log.length, cmid, recalled: false };
    log.push(msg);
    return msg;
  }

  view(conv) {
    const log = this.logs.get(conv) || [];
    return { id: conv, buyer: this.user, shop: "s1", listing: null, agent: null, last_seq: log.length, unread: 0,
      read: { buyer: 0, shop: 0 }, created_at: 0, updated_at: 0, last_message: log[log.length - 1] || null };
  }

  /** Write a frame to a socket as the hub would (a binary message). */
  push(socket, frame) {
    if (socket.readyState !== 1) return;
    const bytes = encode(frame);
    socket.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) });
  }

  /** Close a connection from the hub's side (or as a network drop, with 1006). */
  closeSocket(socket, code) {
    if (socket.readyState === 3) return;
    socket.readyState = 3;
    setImmediate(() => socket.onclose?.({ code }));
  }

  requestsOf(type) {
    return this.requests.filter((f) => f.type === type);
  }

  _handle(socket, frame) {
    if (socket.readyState !== 1) return;
    this.requests.push(frame);
    const reply = (body) => this.push(socket, { ...body, re: frame.id ?? null });
    if (this.overrides[frame.type]?.(socket, frame, reply)) return;
    switch (frame.type) {
      case "auth":
        reply({ type: "welcome", user: this.user, role: this.role, shop: null, server_time: Date.now() });
        return;
      case "sync": {
        for (const [conv, after] of Object.entries(frame.cursors || {})) {
          for (const msg of (this.logs.get(conv) || []).slice(after, after + this.syncLimit)) this.push(socket, msg);
        }
        const conversations = [...this.logs.keys()].map((conv) => this.view(conv));
        reply({ type: "synced", conversations, full: true, more: false, inbox: "i1", total_unread: 0 });
        return;
      }
      case "history": {
        const log = this.logs.get(frame.conv) || [];
        const limit = frame.limit ?? 50;
        const after = frame.after ?? 0;
        let messages;
        let more;
        if (frame.before != null) {
          const range = log.filter((m) => m.seq > after && m.seq < frame.before);
          messages = range.slice(-limit);
          more = range.length > limit;
        } else {
          const range = log.filter((m) => m.seq > after);
          messages = range.slice(0, limit);
          more = range.length > limit;
        }
        reply({ type: "history", conv: frame.conv, messages, more });
        return;
      }
      case "send": {
        const msg = this.add(frame.conv, this.user, frame.body.text, frame.cmid);
        reply({ type: "ack", conv: frame.conv, cmid: frame.cmid, seq: msg.seq, ts: msg.ts, duplicate: false });
        return;
      }
      case "ping":
        reply({ type: "pong", server_time: Date.now() });
        return;
      default:
        reply({ type: "ok" });
    }
  }
}

/** A storage object with the localStorage methods the client uses (tabs of one browser share one). */
export function memoryStorage() {
  const items = new Map();
  return {
    getItem: (k) => items.get(k) ?? null,
    setItem: (k, v) => items.set(k, String(v)),
    removeItem: (k) => items.delete(k),
    key: (i) => [...items.keys()][i] ?? null,
    get length() {
      return items.size;
    },
    items,
  };
}

/**
 * The part of the Web Locks API (navigator.locks) the client uses: exclusive locks by name,
 * `ifAvailable` (the callback gets null when the lock is held) and `signal` (abort a waiting request).
 * Tabs of one browser share one.
 */
export class FakeLocks {
  constructor() {
    this.held = new Set();
    this.queues = new Map(); // name -> [{grant, reject, signal}]
  }

  request(name, options, callback) {
    if (typeof options === "function") {
      callback = options;
      options = {};
    }
    const run = async (lock) => {
      try {
        return await callback(lock);
      } finally {
        if (lock) this._release(name);
      }
    };
    if (!this.held.has(name)) {
      this.held.add(name);
      return run({ name });
    }
    if (options.ifAvailable) return run(null);
    return new Promise((resolve, reject) => {
      const waiter = { grant: () => run({ name }).then(resolve, reject), reject };
      if (!this.queues.has(name)) this.queues.set(name, []);
      this.queues.get(name).push(waiter);
      options.signal?.addEventListener("abort", () => {
        const queue = this.queues.get(name) || [];
        const i = queue.indexOf(waiter);
        if (i >= 0) {
          queue.splice(i, 1);
          reject(new Error("AbortError"));
        }
      });
    });
  }

  _release(name) {
    const next = (this.queues.get(name) || []).shift();
    if (next) setImmediate(next.grant);
    else this.held.delete(name);
  }
}

/** Wait until `check()` is true (polling; fails after `ms`). */
export async function until(check, ms = 3000, what = "condition") {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The clients a test file starts, stopped (with mocks and the fake WebSocket undone) after each test. */
export function stoppedAfterEach() {
  const clients = [];
  afterEach(() => {
    for (const client of clients.splice(0)) client.stop();
    mock.restoreAll();
    delete globalThis.WebSocket;
  });
  return clients;
}
