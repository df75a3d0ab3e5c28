// The resume cursor (docs/protocol.md, "Resuming after a reconnect"): per conversation the highest
// seq N such that every message in (start, N] is held; `sync` sends it and catch-up pages from it.
import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { ChatClient, Conversation } from "../src/client.js";
import { FakeHub, memoryStorage, stoppedAfterEach, until } from "./fake_hub.js";

const clients = stoppedAfterEach();

function msg(conv, seq, sender = "a1", extra = {}) {
  return { type: "msg", conv, seq, sender, role: sender === "b1" ? "buyer" : "agent", kind: "text",
    body: { text: `m${seq}` }, ts: 1718000000000 + seq, cmid: null, recalled: false, ...extra };
}

function view(id, lastSeq) {
  return { id, buyer: "b1", shop: "s1", listing: null, agent: null, last_seq: lastSeq, unread: 0,
    read: { buyer: 0, shop: 0 }, created_at: 0, updated_at: 0, last_message: lastSeq ? msg(id, lastSeq) : null };
}

/** A client with no connection, for the state logic alone. */
function offlineClient() {
  const client = new ChatClient({ url: "ws://127.0.0.1:9/ws", getToken: async () => "t", storage: memoryStorage() });
  client.me = { user: "b1", role: "buyer" };
  clients.push(client);
  return client;
}

/** A client connected to `hub`, online (welcome and synced done); reconnects happen at once. */
async function onlineClient(hub) {
  globalThis.WebSocket = hub.WebSocket;
  mock.method(Math, "random", () => 0); // backoff delays of 0
  const client = new ChatClient({ url: "ws://127.0.0.1:9/ws", getToken: async () => "t", storage: memoryStorage() });
  clients.push(client);
  client.start();
  await until(() => client.status === "online", 3000, "online");
  return client;
}

/** Drop the connection (no close frame) and wait for the resumed one to be online. */
async function dropAndResume(hub, client) {
  const syncs = hub.requestsOf("sync").length;
  hub.closeSocket(hub.socket, 1006);
  // _onClose leaves "online" before the next sync is sent: a new sync and "online" mean resumed.
  await until(() => client.status === "online" && hub.requestsOf("sync").length > syncs, 3000, "the resume");
  return hub.requestsOf("sync").at(-1);
}

test("a conversation's cursor starts at the last_seq of its first view", () => {
  assert.equal(new Conversation(view("c1", 7)).cursor, 7);
  const client = offlineClient();
  const conv = client._view(view("c1", 8));
  assert.equal(conv.cursor, 8);
  client._view(view("c1", 12)); // a later view moves last_seq, not the cursor: 9..12 are not held
  assert.equal(conv.cursor, 8);
  assert.equal(conv.maxSeq, 12);
});

test("an ack for seq 10 before the msg 9: the cursor stays at 8 until 9 arrives", () => {
  const client = offlineClient();
  const conv = client._view(view("c1", 8));
  const item = client.send("c1", { kind: "text", text: "mine" }); // queued: not online, nothing is sent
  client._acked(item, { type: "ack", conv: "c1", cmid: item.cmid, seq: 10, ts: 1718000000010, duplicate: false });
  assert.ok(conv.messages.has(10));
  assert.equal(conv.maxSeq, 10);
  assert.equal(conv.cursor, 8, "the ack's seq is held but 9 is not");
  client._message(msg("c1", 9));
  assert.equal(conv.cursor, 10, "9 filled the hole: the cursor moves over 9 and the acked 10");
  client._message(msg("c1", 11));
  assert.equal(conv.cursor, 11);
});

test("a duplicate does not move the cursor; a recall msg is a held seq like any other", () => {
  const client = offlineClient();
  const conv = client._view(view("c1", 3));
  client._message(msg("c1", 5));
  client._message(msg("c1", 5));
  assert.equal(conv.cursor, 3);
  client._message(msg("c1", 4, "a1", { kind: "recall", body: { seq: 5 } }));
  assert.equal(conv.cursor, 5);
  assert.equal(conv.messages.get(5).recalled, true);
});

test("a conversation first seen through a live msg starts from 0; a history page fills it", () => {
  const client = offlineClient();
  client._message(msg("c2", 5));
  const conv = client.conversations.get("c2");
  assert.equal(conv.cursor, 0, "seqs 1..4 were never held");
  client._message(msg("c2", 6));
  assert.equal(conv.cursor, 0);
  for (const m of [1, 2, 3].map((seq) => msg("c2", seq))) client._store(conv, m, false);
  assert.equal(conv.cursor, 3, "a page below the hole moves the cursor up to the hole");
  client._store(conv, msg("c2", 4), false);
  assert.equal(conv.cursor, 6);
});

test("resume after a drop between an ack and a lower msg: sync sends the contiguous cursor, 9 is recovered", async () => {
  const hub = new FakeHub();
  for (let seq = 1; seq <= 8; seq++) hub.add("c1", seq === 1 ? "b1" : "a1", `m${seq}`);
  const client = await onlineClient(hub);
  const conv = client.conversations.get("c1");
  assert.equal(conv.cursor, 8);
  hub.add("c1", "a1", "nine"); // stored just before our send; its notice has not reached us yet
  client.send("c1", { kind: "text", text: "ten" });
  await until(() => conv.messages.has(10), 3000, "the ack");
  assert.equal(conv.cursor, 8);
  const sync = await dropAndResume(hub, client);
  assert.deepEqual(sync.cursors, { c1: 8 }, "resuming from 10 would skip 9 for good");
  await until(() => conv.cursor === 10, 3000, "the cursor at 10");
  assert.equal(conv.messages.get(9).body.text, "nine");
  assert.deepEqual(conv.sorted().map((m) => m.seq), [8, 9, 10]); // 8 came with the first view
});

test("past SYNC_LIMIT, catch-up pages with history after the cursor until more is false", async () => {
  const hub = new FakeHub({ syncLimit: 5 });
  for (let seq = 1; seq <= 8; seq++) hub.add("c1", "a1", `m${seq}`);
  const client = await onlineClient(hub);
  const conv = client.conversations.get("c1");
  for (let seq = 9; seq <= 408; seq++) hub.add("c1", "a1", `m${seq}`); // stored, not delivered to us
  const sync = await dropAndResume(hub, client);
  assert.deepEqual(sync.cursors, { c1: 8 });
  const pages = hub.requestsOf("history").map((f) => [f.conv, f.after]);
  assert.deepEqual(pages, [["c1", 13], ["c1", 213]], "pushed 9..13, then pages after the cursor");
  assert.equal(conv.cursor, 408);
  for (let seq = 9; seq <= 408; seq++) assert.ok(conv.messages.has(seq), `seq ${seq}`);
});

test("catch-up starts from the cursor, not from the newest seq held", async () => {
  const hub = new FakeHub({ syncLimit: 0 }); // nothing pushed: catch-up does all of it
  for (let seq = 1; seq <= 8; seq++) hub.add("c1", "a1", `m${seq}`);
  const client = await onlineClient(hub);
  const conv = client.conversations.get("c1");
  hub.add("c1", "a1", "nine");
  client.send("c1", { kind: "text", text: "ten" });
  await until(() => conv.messages.has(10), 3000, "the ack");
  hub.add("c1", "a1", "eleven");
  await dropAndResume(hub, client);
  assert.deepEqual(hub.requestsOf("history").map((f) => f.after), [8]);
  assert.equal(conv.cursor, 11);
  assert.equal(conv.messages.get(9).body.text, "nine");
});

test("a conversation first seen live is resynced with cursor 0 and filled from its start", async () => {
  const hub = new FakeHub({ syncLimit: 2 });
  const client = await onlineClient(hub);
  for (let seq = 1; seq <= 4; seq++) hub.add("c2", seq === 1 ? "b1" : "a1", `m${seq}`);
  hub.push(hub.socket, hub.logs.get("c2")[3]); // a new conversation reaches us live at seq 4
  const conv = client.conversations.get("c2");
  assert.equal(conv.cursor, 0);
  await until(() => hub.requestsOf("sync").length === 2, 3000, "the resync");
  assert.deepEqual(hub.requestsOf("sync")[1].cursors, { c2: 0 });
  await until(() => conv.cursor === 4, 3000, "the fill");
  assert.deepEqual(hub.requestsOf("history").map((f) => f.after), [2]);
  assert.deepEqual(conv.sorted().map((m) => m.seq), [1, 2, 3, 4]);
});

test("loadOlder fills the hole under a conversation first seen live", async () => {
  const hub = new FakeHub();
  const client = await onlineClient(hub);
  for (let seq = 1; seq <= 5; seq++) hub.add("c3", "a1", `m${seq}`);
  client._message(hub.logs.get("c3")[4]);
  const conv = client.conversations.get("c3");
  await client.loadOlder("c3");
  assert.equal(conv.cursor, 5);
  assert.equal(conv.more, false);
});
