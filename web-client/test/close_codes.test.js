// Close codes (docs/protocol.md, "Close codes"): 4000–4499 stop (4002: fresh token, then reconnect);
// 4500–4999 and 1000/1001/1005/1006/1011/1012/1013/1015 reconnect with backoff, then resume;
// 4001 gets one more try with a freshly fetched token.
import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { ChatClient, closeAction } from "../src/client.js";
import { FakeHub, memoryStorage, stoppedAfterEach, until } from "./fake_hub.js";

const clients = stoppedAfterEach();

test("closeAction follows the close-code table", () => {
  for (const code of [1000, 1001, 1005, 1006, 1011, 1012, 1013, 1015]) assert.equal(closeAction(code), "retry", `${code}`);
  for (const code of [4500, 4501, 4502, 4503, 4900, 4999]) assert.equal(closeAction(code), "retry", `${code}`);
  assert.equal(closeAction(4002), "renew");
  for (const code of [4000, 4001, 4003, 4004, 4008, 4100, 4499]) assert.equal(closeAction(code), "stop", `${code}`);
  for (const code of [1009, 1002, 1008, 3000, 5000]) assert.equal(closeAction(code), "stop", `${code}`);
});

async function onlineClient(hub, getToken = async () => "t") {
  globalThis.WebSocket = hub.WebSocket;
  const client = new ChatClient({ url: "ws://127.0.0.1:9/ws", getToken, storage: memoryStorage() });
  clients.push(client);
  client.start();
  await until(() => client.status === "online", 3000, "online");
  return client;
}

function events(client, type) {
  const seen = [];
  client.addEventListener(type, (ev) => seen.push(ev.detail));
  return seen;
}

for (const code of [4502, 4501, 4500, 1000, 1001, 1005, 1006, 1011, 1012, 1013, 1015]) {
  test(`close ${code}: reconnect with backoff and resume`, async () => {
    mock.method(Math, "random", () => 0);
    const hub = new FakeHub();
    const client = await onlineClient(hub);
    const fatal = events(client, "fatal");
    hub.closeSocket(hub.socket, code);
    await until(() => hub.requestsOf("sync").length === 2 && client.status === "online", 3000, "the resume");
    assert.equal(hub.sockets.length, 2);
    assert.deepEqual(fatal, []);
  });
}

for (const code of [4008, 4003, 4004, 4499, 1009]) {
  test(`close ${code}: stop and report, no reconnect`, async () => {
    mock.method(Math, "random", () => 0);
    const hub = new FakeHub();
    const client = await onlineClient(hub);
    const fatal = events(client, "fatal");
    hub.closeSocket(hub.socket, code);
    await until(() => fatal.length === 1, 3000, "fatal");
    assert.deepEqual(fatal, [{ code }]);
    assert.equal(client.status, "stopped");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(hub.sockets.length, 1);
  });
}

test("close 4002: a fresh token at once; a repeat backs off instead of looping", async () => {
  mock.method(Math, "random", () => 0.9);
  const hub = new FakeHub();
  let tokens = 0;
  const client = await onlineClient(hub, async () => `t${++tokens}`);
  assert.equal(tokens, 1);
  // The hub refuses the next token as expired too (error 2003, then close 4002).
  hub.overrides.auth = (socket, frame, reply) => {
    reply({ type: "error", code: 2003, message: "token expired", details: null });
    hub.closeSocket(socket, 4002);
    return true;
  };
  hub.closeSocket(hub.socket, 4002);
  await until(() => hub.requestsOf("auth").length === 2, 3000, "the first renewal");
  assert.equal(tokens, 2);
  assert.deepEqual(hub.requestsOf("auth").map((f) => f.token), ["t1", "t2"]);
  // The second 4002 is the second attempt in a row: 0.9 × 1 s of backoff, not an immediate retry.
  await until(() => client.status === "reconnecting" && !client._ws, 3000, "the second close");
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(hub.sockets.length, 2, "no immediate third connection");
  delete hub.overrides.auth;
  await until(() => client.status === "online", 3000, "online with the third token");
  assert.deepEqual(hub.requestsOf("auth").map((f) => f.token), ["t1", "t2", "t3"]);
});

test("our own reconnect (4900) goes at once; a failing resume backs off", async () => {
  mock.method(Math, "random", () => 0.9);
  const hub = new FakeHub();
  const client = await onlineClient(hub);
  const fatal = events(client, "fatal");
  const started = Date.now();
  client.reconnect();
  await until(() => client.status === "online" && hub.sockets.length === 2, 3000, "the reconnect");
  assert.ok(Date.now() - started < 400, "no backoff for a deliberate reconnect after being online");
  assert.deepEqual(fatal, []);
  // A resume that fails (here: sync refused by a backend in trouble) closes with 4900 again: that
  // repeat waits for its backoff (0.9 × 1 s) rather than hammering the hub.
  hub.overrides.sync = (socket, frame, reply) => {
    reply({ type: "error", code: 5001, message: "backend unavailable", details: null });
    return true;
  };
  client.reconnect();
  await until(() => hub.requestsOf("sync").length === 3 && !client._ws, 3000, "the failed resume");
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(hub.sockets.length, 3, "no immediate retry of a failing resume");
  delete hub.overrides.sync;
  await until(() => client.status === "online" && hub.sockets.length === 4, 3000, "the resume after backoff");
  assert.deepEqual(fatal, []);
});
