// After-sale refunds on the cards: which orders are final (a released one only after its
// after-sale period), what a buyer may claim, the claim dialog's and the arbiter's checks in our
// words, the timeline words, the deadline words of every after-sale state, and 6011 readable.
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { FINAL_ORDER_STATES, AFTER_SALE_STATES, AFTER_SALE_DEADLINES, URGENT_STATES, orderIsFinal, claimable, canClaim,
  checkClaim, checkPart, afterSaleStep, isAfterSaleAction } from "../src/after_sale.js";
import { TABLES, setLang, errorText } from "../src/i18n.js";

afterEach(() => setLang("en"));

const NOW = 1_800_000_000_000;
const order = (extra = {}) => ({ amount: 12_800, currency: "CNY", buyer_refund: 0, deadline_at: NOW + 1000, ...extra });

test("final states: the settled ones always, RELEASED only once its after-sale period passed", () => {
  for (const s of ["CANCELLED", "REFUNDED", "RESOLVED", "AFTER_SALE_REFUNDED", "AFTER_SALE_CLOSED", "AFTER_SALE_RESOLVED"]) {
    assert.ok(FINAL_ORDER_STATES.has(s), s);
    assert.equal(orderIsFinal(s, order(), NOW), true, s);
  }
  assert.equal(FINAL_ORDER_STATES.has("RELEASED"), false);
  assert.equal(orderIsFinal("RELEASED", order(), NOW), false);
  assert.equal(orderIsFinal("RELEASED", order({ deadline_at: NOW }), NOW), true);
  assert.equal(orderIsFinal("RELEASED", order({ deadline_at: null }), NOW), true); // a release from before after-sale
  for (const s of ["OFFERED", "HELD", "SHIPPED", "DISPUTED", "AFTER_SALE_REQUESTED", "AFTER_SALE_REFUSED", "AFTER_SALE_DISPUTED"]) {
    assert.equal(orderIsFinal(s, order({ deadline_at: null }), NOW), false, s);
  }
});

test("a claim: released and in the period, up to what was paid less refunds", () => {
  assert.equal(claimable(order()), 12_800);
  assert.equal(claimable(order({ buyer_refund: 2_800 })), 10_000);
  assert.equal(canClaim("RELEASED", order(), NOW), true);
  assert.equal(canClaim("RELEASED", order({ deadline_at: NOW - 1 }), NOW), false);
  assert.equal(canClaim("RELEASED", order({ buyer_refund: 12_800 }), NOW), false);
  assert.equal(canClaim("AFTER_SALE_REFUSED", order(), NOW), false);
  assert.deepEqual(checkClaim({ amount: "50", reason: "  stopped heating " }, order()), { amount: 5_000, reason: "stopped heating" });
  assert.deepEqual(checkClaim({ amount: "¥128.00", reason: "x" }, order()).amount, 12_800);
  assert.throws(() => checkClaim({ amount: "128.01", reason: "x" }, order()), { words: "Enter an amount above zero and at most ¥128.00." });
  assert.throws(() => checkClaim({ amount: "0", reason: "x" }, order()), /above zero/);
  assert.throws(() => checkClaim({ amount: "110", reason: "x" }, order({ buyer_refund: 2_800 })), /at most ¥100.00/);
  assert.throws(() => checkClaim({ amount: "5", reason: "  " }, order()), { words: "Please say what went wrong." });
  setLang("zh-CN");
  assert.throws(() => checkClaim({ amount: "200", reason: "x" }, order()), { words: "请输入大于 0 且不超过 ¥128.00 的金额。" });
});

test("the arbiter pays part: above zero, below the claim", () => {
  assert.equal(checkPart("30", 5_000, "CNY"), 3_000);
  assert.throws(() => checkPart("50", 5_000, "CNY"), { words: "Enter an amount above zero and below ¥50.00." });
  assert.throws(() => checkPart("", 5_000, "CNY"), /below ¥50.00/);
});

test("every after-sale state has its label, note, timeline words, and deadline words where it waits", () => {
  for (const state of AFTER_SALE_STATES) {
    const stem = state.toLowerCase().replace(/(^|_)(\w)/g, (m, s, c) => c.toUpperCase());
    assert.ok(TABLES.en["os" + stem] && TABLES.en["os" + stem + "Note"], state);
    const words = afterSaleStep({ state, action: "x", view: order({ after_sale_amount: 5_000, after_sale_reason: "broke",
      after_sale_refund: 3_000, dispute_reason: "unfair" }) });
    assert.ok(words && words[0], state);
  }
  assert.deepEqual(afterSaleStep({ state: "AFTER_SALE_REQUESTED", view: order({ after_sale_amount: 5_000, after_sale_reason: "broke" }) }),
    ["After-sale claim", "¥50.00", "“broke”"]);
  assert.deepEqual(afterSaleStep({ state: "AFTER_SALE_DISPUTED", action: "after_sale_escalated", view: order() }),
    ["To the platform: the shop's money fell short"]);
  assert.deepEqual(afterSaleStep({ state: "AFTER_SALE_RESOLVED", view: order({ after_sale_refund: 0 }) }),
    ["Decided by the platform", "Keep with the shop"]);
  assert.equal(afterSaleStep({ state: "RELEASED", view: order() }), null);
  for (const role of ["buyer", "agent"]) {
    for (const state of ["RELEASED", "AFTER_SALE_REQUESTED", "AFTER_SALE_REFUSED", "AFTER_SALE_DISPUTED"]) {
      const key = AFTER_SALE_DEADLINES[role][state];
      assert.match(TABLES.en[key], /\{d\}/, `${role} ${state}`);
    }
  }
  assert.deepEqual(Object.keys(URGENT_STATES), ["REFUND_REQUESTED", "AFTER_SALE_REQUESTED"]);
  assert.ok(isAfterSaleAction("after-sale-accept") && !isAfterSaleAction("refund") && !isAfterSaleAction(undefined));
});

test("6011 says what the shop's balance and deposit hold, in both languages", () => {
  const err = { code: 6011, details: { covered: 2_000, currency: "CNY" } };
  assert.equal(errorText(err), "The shop's balance and deposit hold only ¥20.00: decide at most that, or wait until the "
    + "marketplace tops up the deposit.");
  setLang("zh-CN");
  assert.match(errorText(err), /^店铺余额与保证金合计仅有 ¥20.00/);
  assert.match(errorText({ code: 6011 }), /^店铺余额与保证金不足/);
});
