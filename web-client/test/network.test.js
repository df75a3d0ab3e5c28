// Network trouble (issue 10): a token that cannot be had is retried with backoff, a token the hub
// refuses gets one fresh fetch before the client stops, a silent link is found dead by an
// application ping with a deadline, and the browser's offline/online events are followed.
import { test, mock, afterEach } from "node:test";
import assert from "node:assert/strict";
import { ChatClient } from "../src/client.js";
import { FakeHub, memoryStorage, stoppedAfterEach, until } from "./fake_hub.js";

const clients = stoppedAfterEach();
afterEach(() => {
  delete globalThis.window;
  Object.defineProperty(globalThis, "navigator", { value: realNavigator, configurable: true, writable: true });
});
const realNavigator = globalThis.navigator;

const FAST = { backoffMinMs: 20, backoffMaxMs: 80, pingIdleMs: 60, deadAfterMs: 80, tickMs: 10,
  connectTimeoutMs: 300, tokenTimeoutMs: 150, offlineRetryMs: 60000 };

function makeClient(hub, getToken, timing = FAST) {
  globalThis.WebSocket = hub.WebSocket;
  const client = new ChatClient({ url: "ws://127.0.0.1:9/ws", getToken, storage: memoryStorage(), locks: null, timing });
  clients.push(client);
  return client;
}

function events(client, type) {
  const seen = [];
  client.addEventListener(type, (ev) => seen.push(ev.detail));
  return seen;
}

test("a token fetch that fails is retried with backoff until it works; no idle, no fatal", async () => {
  const hub = new FakeHub();
  let calls = 0;
  const client = makeClient(hub, async () => {
    calls += 1;
    if (calls <= 3) throw new Error("the marketplace backend is down");
    return "t";
  });
  const statuses = events(client, "status");
  const tokenErrors = events(client, "tokenerror");
  const fatal = events(client, "fatal");
  client.start();
  await until(() => client.status === "online", 3000, "online after the token comes");
  assert.equal(calls, 4);
  assert.equal(tokenErrors.length, 3);
  assert.deepEqual(fatal, []);
  assert.ok(!statuses.includes("idle"), `went idle: ${statuses}`);
  assert.ok(statuses.includes("reconnecting"));
  assert.equal(client.problem, null);
});

test("a token fetch that fails on reconnect (after being online) is retried too", async () => {
  const hub = new FakeHub();
  let failing = false;
  let calls = 0;
  const client = makeClient(hub, async () => {
    calls += 1;
    if (failing) throw new Error("offline backend");
    return "t";
  });
  client.start();
  await until(() => client.status === "online", 3000, "online");
  failing = true;
  hub.closeSocket(hub.socket, 1006);
  await until(() => calls >= 4, 3000, "several token tries");
  assert.equal(client.status, "reconnecting");
  assert.equal(client.problem, "token");
  failing = false;
  await until(() => client.status === "online", 3000, "online again");
  assert.equal(hub.requestsOf("sync").length, 2);
});

test("a token function that never answers times out and is asked again", async () => {
  const hub = new FakeHub();
  let calls = 0;
  const client = makeClient(hub, () => {
    calls += 1;
    return calls === 1 ? new Promise(() => {}) : Promise.resolve("t");
  });
  client.start();
  await until(() => client.status === "online", 3000, "online with the second token");
  assert.equal(calls, 2);
});

test("a token getToken cannot give (null: signed out) leaves the client idle", async () => {
  const hub = new FakeHub();
  const client = makeClient(hub, async () => null);
  client.start();
  await until(() => client.status === "idle" && !client._connecting, 3000, "idle");
  assert.equal(hub.sockets.length, 0);
});

test("close 4001: one fresh token, then online; refused again after the fresh fetch: fatal", async () => {
  mock.method(Math, "random", () => 0);
  const hub = new FakeHub();
  let tokens = 0;
  const client = makeClient(hub, async () => `t${++tokens}`);
  const fatal = events(client, "fatal");
  client.start();
  await until(() => client.status === "online", 3000, "online");
  // The hub refuses the next token (error 2002, then close 4001) once: the fresh one works.
  let refuse = 1;
  hub.overrides.auth = (socket, frame, reply) => {
    if (refuse <= 0) return false;
    refuse -= 1;
    reply({ type: "error", code: 2002, message: "invalid token", details: null });
    hub.closeSocket(socket, 4001);
    return true;
  };
  hub.closeSocket(hub.socket, 1006);
  await until(() => client.status === "online" && tokens === 3, 3000, "online with a fresh token");
  assert.deepEqual(fatal, []);
  // Now every token is refused: after the fresh fetch it is final, and said once.
  refuse = 100;
  hub.closeSocket(hub.socket, 1006);
  await until(() => fatal.length === 1, 3000, "fatal");
  assert.deepEqual(fatal, [{ code: 4001 }]);
  assert.equal(client.status, "stopped");
  assert.equal(tokens, 5, "the refused token was fetched afresh exactly once");
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(tokens, 5);
  assert.equal(hub.requestsOf("auth").length, 5);
});

test("close 4001 straight from the hub (no error frame first) also gets one fresh token", async () => {
  const hub = new FakeHub();
  let tokens = 0;
  const client = makeClient(hub, async () => `t${++tokens}`);
  const fatal = events(client, "fatal");
  client.start();
  await until(() => client.status === "online", 3000, "online");
  hub.closeSocket(hub.socket, 4001);
  await until(() => client.status === "online" && tokens === 2, 3000, "online again");
  hub.closeSocket(hub.socket, 4001);
  await until(() => client.status === "online" && tokens === 3, 3000, "a later 4001 gets its own fresh try");
  assert.deepEqual(fatal, []);
});

test("a silent link (no close, no pong) is dropped within the deadline and resumed", async () => {
  mock.method(Math, "random", () => 0);
  const hub = new FakeHub();
  const client = makeClient(hub, async () => "t");
  client.start();
  await until(() => client.status === "online", 3000, "online");
  // An answering hub keeps the link: pings go out, pongs come back, nothing is dropped.
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(hub.requestsOf("ping").length >= 2, "pings while idle");
  assert.equal(hub.sockets.length, 1);
  // The link goes silent: nothing arrives, and the socket never closes.
  const dead = hub.socket;
  dead.send = () => {};
  const started = Date.now();
  let noticed = 0;
  client.addEventListener("status", () => {
    if (client.status === "reconnecting" && !noticed) noticed = Date.now();
  });
  await until(() => noticed, 2000, "the dead link noticed");
  const took = noticed - started;
  assert.ok(took <= FAST.pingIdleMs + FAST.deadAfterMs + 3 * FAST.tickMs + 50, `noticed after ${took} ms`);
  await until(() => client.status === "online" && hub.sockets.length === 2, 3000, "resumed on a new socket");
  assert.equal(hub.requestsOf("sync").length, 2);
});

test("frames arriving keep the link alive without pings", async () => {
  const hub = new FakeHub();
  const client = makeClient(hub, async () => "t", { ...FAST, pingIdleMs: 250 });
  client.start();
  await until(() => client.status === "online", 3000, "online");
  const before = hub.requestsOf("ping").length;
  const timer = setInterval(() => hub.push(hub.socket, { type: "presence", entity: "s:s1", status: "online", last_seen: null }), 20);
  await new Promise((r) => setTimeout(r, 300));
  clearInterval(timer);
  assert.equal(hub.requestsOf("ping").length, before);
  assert.equal(hub.sockets.length, 1);
});

test("a handshake that never completes is given up after connectTimeoutMs", async () => {
  mock.method(Math, "random", () => 0);
  const hub = new FakeHub();
  const Real = hub.WebSocket;
  let stall = true;
  hub.WebSocket = class extends Real {
    constructor(url) {
      super(url);
      this.stalled = stall; // this handshake never finishes: no open event, no close event
    }
    get onopen() {
      return this.stalled ? undefined : this._onopen;
    }
    set onopen(fn) {
      this._onopen = fn;
    }
  };
  const client = makeClient(hub, async () => "t", { ...FAST, connectTimeoutMs: 100 });
  client.start();
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(client.status, "connecting");
  stall = false;
  await until(() => client.status === "online", 3000, "online on a later socket");
  assert.ok(hub.sockets.length >= 2);
});

test("offline event: drop at once, wait for the network; online event: reconnect at once", async () => {
  const hub = new FakeHub();
  globalThis.window = new EventTarget();
  const nav = { onLine: true };
  Object.defineProperty(globalThis, "navigator", { value: nav, configurable: true, writable: true });
  const client = makeClient(hub, async () => "t");
  client.start();
  await until(() => client.status === "online", 3000, "online");
  nav.onLine = false;
  window.dispatchEvent(new Event("offline"));
  assert.equal(client.status, "offline");
  const item = client.send("c1", { kind: "text", text: "queued offline" });
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(client.status, "offline", "no reconnect attempts while the browser is offline");
  assert.equal(hub.sockets.length, 1);
  assert.deepEqual(client.pending.map((p) => p.cmid), [item.cmid]);
  nav.onLine = true;
  window.dispatchEvent(new Event("online"));
  await until(() => client.status === "online" && client.pending.length === 0, 3000, "online and sent");
  assert.equal(hub.requestsOf("send").length, 1);
});

test("starting while the browser is offline waits for the network", async () => {
  const hub = new FakeHub();
  globalThis.window = new EventTarget();
  const nav = { onLine: false };
  Object.defineProperty(globalThis, "navigator", { value: nav, configurable: true, writable: true });
  const client = makeClient(hub, async () => "t");
  client.start();
  assert.equal(client.status, "offline");
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(hub.sockets.length, 0);
  nav.onLine = true;
  window.dispatchEvent(new Event("online"));
  await until(() => client.status === "online", 3000, "online");
});

test("online event while connected probes the link: a dead one is dropped at once", async () => {
  mock.method(Math, "random", () => 0);
  const hub = new FakeHub();
  globalThis.window = new EventTarget();
  const client = makeClient(hub, async () => "t", { ...FAST, pingIdleMs: 60000 });
  client.start();
  await until(() => client.status === "online", 3000, "online");
  hub.socket.send = () => {}; // silent from now on
  const statuses = events(client, "status");
  window.dispatchEvent(new Event("online"));
  await until(() => statuses.includes("reconnecting"), FAST.deadAfterMs + 200, "the probe's deadline");
});
