// Credit levels as the hub names them, positive rates in per cent, and the back office's tags as
// an agent types them (either comma width, repeats dropped, limits in our words).
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { levelParts, levelWords, percent } from "../src/credit.js";
import { parseTags } from "../src/buyer_notes.js";
import { setLang } from "../src/i18n.js";

afterEach(() => setLang("en"));

test("levels: hearts, diamonds and crowns from 1 to 5; anything else is no level", () => {
  assert.deepEqual(levelParts("1 heart"), { n: 1, kind: "heart" });
  assert.deepEqual(levelParts("3 hearts"), { n: 3, kind: "heart" });
  assert.deepEqual(levelParts("5 diamonds"), { n: 5, kind: "diamond" });
  assert.deepEqual(levelParts("2 crowns"), { n: 2, kind: "crown" });
  for (const odd of [null, "", "6 hearts", "3 stars", "hearts"]) assert.equal(levelParts(odd), null);
  setLang("zh-CN");
  assert.equal(levelWords("3 hearts"), "3 心");
  assert.equal(levelWords("1 crown"), "1 皇冠");
  assert.equal(levelWords(null), "暂无等级");
});

test("positive rate: basis points to per cent, one decimal at most", () => {
  assert.equal(percent(10000), "100%");
  assert.equal(percent(9830), "98.3%");
  assert.equal(percent(9649), "96.5%");
  assert.equal(percent(0), "0%");
});

test("tags: split on , ， 、 and new lines, trimmed, without repeats or empties", () => {
  assert.deepEqual(parseTags("VIP，回头客, VIP、 包邮 ,,"), ["VIP", "回头客", "包邮"]);
  assert.deepEqual(parseTags(""), []);
  assert.throws(() => parseTags("x".repeat(21)), /at most 20 characters/);
  assert.throws(() => parseTags(Array.from({ length: 21 }, (_, i) => `t${i}`).join(",")), /At most 20 tags/);
});
