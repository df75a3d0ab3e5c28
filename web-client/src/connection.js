// The connection state machine of ChatClient (mixed into it, see client.js): connect with a
// token, authenticate and resume, notice a dead link (application ping with a deadline), act on
// close codes, reconnect with backoff, and match replies to requests.
import { encode, decode } from "@msgpack/msgpack";
import { AUTH_ERROR_CLOSE, CLOSE_DEAD, CLOSE_RECONNECT, Disconnected, ServerError, WS_OPEN, closeAction, browserOffline,
  detach, tokenExpiry, withTimeout } from "./protocol.js";

export class Connection {
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
        this._emit("frame", frame); // others (e.g. the back office's conv_state): for whoever listens
        break;
    }
  }
}
