// When the widget alerts the buyer (notify.js): only for the other side's messages that count as
// unread, only while the panel is closed or the tab hidden; and the chime stays silent until the
// widget's audio was unlocked by a gesture.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Chime, alertBody, shouldAlert } from "../src/notify.js";

const reply = { seq: 5, sender: "demo-agent-1", role: "agent", kind: "text", body: { text: "有货" }, recalled: false };

test("alerts for the shop's reply while the panel is closed or the tab is hidden", () => {
  assert.equal(shouldAlert(reply, { mine: false, panelOpen: false, hidden: false }), true);
  assert.equal(shouldAlert(reply, { mine: false, panelOpen: true, hidden: true }), true);
  assert.equal(shouldAlert(reply, { mine: false, panelOpen: true, hidden: false }), false);
});

test("no alert for own messages, hub notes, recalls and card updates", () => {
  const closed = { mine: false, panelOpen: false, hidden: true };
  assert.equal(shouldAlert(reply, { ...closed, mine: true }), false);
  assert.equal(shouldAlert({ ...reply, sender: "system", kind: "system" }, closed), false);
  assert.equal(shouldAlert({ ...reply, kind: "recall" }, closed), false);
  assert.equal(shouldAlert({ ...reply, recalled: true }, closed), false);
  assert.equal(shouldAlert({ ...reply, kind: "card_update" }, closed), false);
  assert.equal(shouldAlert({ ...reply, kind: "card" }, closed), true); // a new offer is worth a look
  assert.equal(shouldAlert(null, closed), false);
});

test("the body is one line, cut to length", () => {
  assert.equal(alertBody("a\n\n b  c"), "a b c");
  assert.equal(alertBody("x".repeat(200), 10), "xxxxxxxxx…");
  assert.equal(alertBody(undefined), "");
});

class FakeAudio {
  constructor() {
    this.state = "suspended";
    this.currentTime = 0;
    this.destination = {};
    this.oscillators = 0;
  }
  resume() {
    this.state = "running";
  }
  createOscillator() {
    this.oscillators += 1;
    return { frequency: {}, connect: (g) => g, start() {}, stop() {} };
  }
  createGain() {
    const param = { setValueAtTime() {}, exponentialRampToValueAtTime() {} };
    return { gain: param, connect: (x) => x };
  }
}

test("the chime is silent before a gesture unlocked audio, then plays", () => {
  const chime = new Chime({ AudioContext: FakeAudio });
  assert.equal(chime.play(), false);
  chime.unlock();
  assert.equal(chime.play(), true);
  assert.equal(chime.ctx.oscillators, 2);
  assert.equal(chime.played, 1);
  assert.equal(new Chime({}).play(), false); // no Web Audio at all: nothing breaks
});
