// Sending and the unsent queue of ChatClient (mixed into it, see client.js): messages show as
// pending at once, are sent in order and resent with the same cmid until acked, and are kept per
// tab in storage under a Web Lock so that no tab overwrites another's and none is lost.
import { Disconnected, randomId, sleep } from "./protocol.js";

export class UnsentQueue {
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
          if (err.code === 4001 || err.code === 5003) {
            // Too fast, or the hub is over capacity: it says when to come back; nothing was stored.
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
