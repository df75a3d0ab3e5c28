// Agents' display names (agent_names.js): asked per shop once online, again once per unknown
// agent; an avatar is used only when it is a plain https URL, whatever the hub sent.
import { test } from "node:test";
import assert from "node:assert/strict";
import { agentNames } from "../src/agent_names.js";

function fakeClient(answers) {
  const client = new EventTarget();
  client.status = "online";
  client.me = { user: "a1", role: "agent", shop: "s1" };
  client.conversations = new Map();
  client.asked = [];
  client.request = async (frame) => {
    client.asked.push(frame);
    return { type: "agents", shop: frame.shop, agents: answers.shift() || {} };
  };
  return client;
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

test("names and only safe avatars, asked once per unknown agent", async () => {
  const client = fakeClient([
    { a1: { name: "丽丽", avatar: "https://cdn.example.com/a1.png" }, a2: { name: "Bo", avatar: "javascript:alert(1)" },
      a3: { name: null, avatar: "https://x.example/\"onerror=\"x" } },
    { a4: { name: "Wang", avatar: null } },
    { a4: { name: "Wang", avatar: null } },
  ]);
  const names = agentNames(client);
  client.dispatchEvent(new Event("status"));
  await tick();
  assert.deepEqual(client.asked, [{ type: "agents", shop: "s1" }]);
  assert.equal(names.name("s1", "a1"), "丽丽");
  assert.equal(names.avatar("s1", "a1"), "https://cdn.example.com/a1.png");
  assert.equal(names.avatar("s1", "a2"), null);
  assert.equal(names.avatar("s1", "a3"), null);
  assert.equal(names.label("s1", "a9"), "a9");
  assert.equal(names.name("other", "a1"), null);

  // a hand-over to an agent the answer did not list asks again, once
  const conv = { view: { shop: "s1" } };
  const note = { role: "system", sender: "system", kind: "system", body: { event: "assigned", agent: "a4", by: "a1" } };
  client.dispatchEvent(new CustomEvent("message", { detail: { conv, msg: note } }));
  await tick();
  assert.equal(names.name("s1", "a4"), "Wang");
  client.dispatchEvent(new CustomEvent("message", { detail: { conv, msg: { ...note, body: { ...note.body, agent: "a5" } } } }));
  client.dispatchEvent(new CustomEvent("message", { detail: { conv, msg: { ...note, body: { ...note.body, agent: "a5" } } } }));
  await tick();
  assert.equal(client.asked.length, 3); // a5 has no name: asked about once, not on every message
});
