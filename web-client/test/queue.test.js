// The unsent queue with several tabs (issue 10, item 3): each tab keeps its own queue under its own
// key and holds a Web Lock while it lives; a queue whose lock is free (a closed or reloaded tab) is
// taken over by exactly one live tab of the same user. Nothing lost, nothing sent twice.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ChatClient } from "../src/client.js";
import { FakeHub, FakeLocks, memoryStorage, stoppedAfterEach, until } from "./fake_hub.js";

const clients = stoppedAfterEach();
const FAST = { backoffMinMs: 10, backoffMaxMs: 40 };

/** One browser: a hub, its storage and its lock manager, shared by the tabs opened in it. */
function browser({ user = "b1", locks = true } = {}) {
  const hub = new FakeHub({ user });
  hub.logs.set("c1", []);
  const storage = memoryStorage();
  const lockManager = locks ? new FakeLocks() : null;
  return {
    hub,
    storage,
    locks: lockManager,
    tab(timing = {}) {
      globalThis.WebSocket = hub.WebSocket;
      const client = new ChatClient({ url: "ws://127.0.0.1:9/ws", getToken: async () => "t", storageKey: "tc",
        storage, locks: lockManager, timing: { ...FAST, ...timing } });
      clients.push(client);
      return client;
    },
    /** The network fails: open sockets drop, new ones close at once. */
    down() {
      hub.overrides.auth = (socket) => {
        hub.closeSocket(socket, 1006);
        return true;
      };
      for (const s of hub.sockets) hub.closeSocket(s, 1006);
    },
    up() {
      delete hub.overrides.auth;
    },
    queues() {
      return [...storage.items.keys()].filter((k) => k.startsWith("tc:pending:")).sort();
    },
    sentTexts() {
      return (hub.logs.get("c1") || []).map((m) => m.body.text);
    },
    sendsPerCmid() {
      const counts = {};
      for (const f of hub.requestsOf("send")) counts[f.cmid] = (counts[f.cmid] || 0) + 1;
      return counts;
    },
  };
}

async function online(client) {
  if (client.status === "idle") client.start();
  await until(() => client.status === "online", 3000, "online");
  return client;
}

const text = (t) => ({ kind: "text", text: t });

test("two tabs queue offline under their own keys; a reload loses nothing and sends nothing twice", async () => {
  const b = browser();
  const tabA = await online(b.tab());
  const tabB = await online(b.tab());
  b.down();
  await until(() => tabA.status !== "online" && tabB.status !== "online", 3000, "both offline");
  tabA.send("c1", text("a1"));
  tabA.send("c1", text("a2"));
  tabB.send("c1", text("b1"));
  assert.equal(b.queues().length, 2, "one queue per tab");
  assert.deepEqual(JSON.parse(b.storage.getItem(tabA._queueKey())).items.map((i) => i.body.text), ["a1", "a2"]);
  assert.deepEqual(JSON.parse(b.storage.getItem(tabB._queueKey())).items.map((i) => i.body.text), ["b1"]);

  // Tab A reloads while the network is down: its page (and lock) goes, a new page comes.
  tabA.stop();
  const tabA2 = b.tab();
  tabA2.start();
  b.up();
  await online(tabA2);
  await online(tabB);
  await until(() => b.sentTexts().length === 3, 3000, "all three sent");
  assert.deepEqual([...b.sentTexts()].sort(), ["a1", "a2", "b1"]);
  assert.ok(b.sentTexts().indexOf("a1") < b.sentTexts().indexOf("a2"), "a tab's messages keep their order");
  assert.deepEqual(Object.values(b.sendsPerCmid()), [1, 1, 1]);
  await until(() => b.queues().length === 0, 3000, "no queue left in storage");
  assert.equal(tabA2.pending.length + tabB.pending.length, 0);
});

test("a live tab takes over a closed tab's queue at once (it waits on that tab's lock)", async () => {
  const b = browser();
  const tabA = await online(b.tab());
  const tabB = await online(b.tab());
  b.down();
  await until(() => tabA.status !== "online", 3000, "A offline");
  const item = tabA.send("c1", text("from the tab that closes"));
  // Tab B learns of A's queue (in a browser: a `storage` event), then A is closed.
  tabB._onStorage({ key: tabA._queueKey(), newValue: b.storage.getItem(tabA._queueKey()), storageArea: b.storage });
  assert.deepEqual(tabB.pending, []);
  tabA.stop();
  await until(() => tabB.pending.length === 1, 1000, "taken over by tab B");
  assert.equal(tabB.pending[0].cmid, item.cmid);
  assert.deepEqual(b.queues(), [tabB._queueKey()]);
  b.up();
  await until(() => b.sentTexts().length === 1 && tabB.pending.length === 0, 3000, "sent by tab B");
  assert.deepEqual(b.sendsPerCmid(), { [item.cmid]: 1 });
});

test("a live tab's queue is never taken: only one owner per queue, even with two takers waiting", async () => {
  const b = browser();
  const tabA = await online(b.tab());
  const tabB = await online(b.tab());
  const tabC = await online(b.tab());
  b.down();
  await until(() => tabA.status !== "online", 3000, "A offline");
  tabA.send("c1", text("only once"));
  for (const t of [tabB, tabC]) t._adoptOrphans();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(tabB.pending.length + tabC.pending.length, 0, "A is alive: its queue stays with it");
  tabA.stop();
  await until(() => tabB.pending.length + tabC.pending.length === 1, 1000, "one taker");
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(tabB.pending.length + tabC.pending.length, 1, "not two");
  b.up();
  await until(() => b.sentTexts().length === 1 && tabB.pending.length + tabC.pending.length === 0, 3000, "sent");
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(b.sentTexts(), ["only once"]);
});

test("another user's queue in the same browser is left for that user", async () => {
  const b = browser({ user: "b2" });
  // What buyer b1 left unsent in a tab that is gone (no lock held).
  b.storage.setItem("tc:pending:tab-gone", JSON.stringify({ beat: 1, items: [
    { conv: "c9", cmid: "w-b1", body: text("b1's words"), created: 1, user: "b1" },
  ] }));
  const tab = await online(b.tab());
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(tab.pending, []);
  assert.equal(b.hub.requestsOf("send").length, 0);
  assert.ok(b.storage.getItem("tc:pending:tab-gone"), "kept for b1");
});

test("the previous version's shared queue is taken over once", async () => {
  const b = browser();
  b.storage.setItem("tc:pending", JSON.stringify([
    { conv: "c1", cmid: "w-old", body: text("from the old version"), created: 1, error: null },
  ]));
  const tab = await online(b.tab());
  await until(() => b.sentTexts().length === 1 && tab.pending.length === 0, 3000, "sent");
  assert.equal(b.storage.getItem("tc:pending"), null);
  assert.deepEqual(b.sendsPerCmid(), { "w-old": 1 });
});

test("a queue survives acks, discards and a full reload with nothing of it in flight", async () => {
  const b = browser();
  const tab = await online(b.tab());
  b.down();
  await until(() => tab.status !== "online", 3000, "offline");
  const keep = tab.send("c1", text("keep"));
  const drop = tab.send("c1", text("drop"));
  tab.discard(drop.cmid);
  assert.deepEqual(JSON.parse(b.storage.getItem(tab._queueKey())).items.map((i) => i.cmid), [keep.cmid]);
  tab.stop();
  b.up();
  const reloaded = await online(b.tab());
  await until(() => b.sentTexts().length === 1 && reloaded.pending.length === 0, 3000, "sent after the reload");
  assert.deepEqual(b.sentTexts(), ["keep"]);
  assert.deepEqual(b.queues(), []);
});

test("without Web Locks: a queue not rewritten for queueStaleMs is taken over, a fresh one is not", async () => {
  const b = browser({ locks: false });
  const now = Date.now();
  b.storage.setItem("tc:pending:tab-stale", JSON.stringify({ beat: now - 60000, items: [
    { conv: "c1", cmid: "w-stale", body: text("stale tab"), created: 1, user: "b1" },
  ] }));
  b.storage.setItem("tc:pending:tab-alive", JSON.stringify({ beat: now, items: [
    { conv: "c1", cmid: "w-alive", body: text("live tab"), created: 2, user: "b1" },
  ] }));
  const tab = await online(b.tab({ queueStaleMs: 30000 }));
  await until(() => b.sentTexts().length === 1 && tab.pending.length === 0, 3000, "the stale one sent");
  assert.deepEqual(b.sentTexts(), ["stale tab"]);
  assert.ok(b.storage.getItem("tc:pending:tab-alive"), "the live tab keeps its queue");
});

test("a send refused for overload (5003) is sent again after retry_after_ms with the same cmid, in order", async () => {
  const b = browser();
  let refusals = 2;
  b.hub.overrides.send = (socket, frame, reply) => {
    if (refusals === 0) return false;
    refusals -= 1;
    reply({ type: "error", code: 5003, message: "over capacity", details: { retry_after_ms: 30 } });
    return true;
  };
  const tab = await online(b.tab());
  const first = tab.send("c1", text("first"));
  const second = tab.send("c1", text("second"));
  await until(() => tab.pending.length === 0, 3000, "both acked");
  assert.deepEqual(b.sentTexts(), ["first", "second"]);
  const counts = b.sendsPerCmid();
  assert.equal(counts[first.cmid], 3); // refused twice, then stored
  assert.equal(counts[second.cmid], 1);
  assert.ok(tab.pending.every((p) => !p.error));
});
