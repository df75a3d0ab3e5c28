// The catalogue (both languages complete, placeholders kept) and the locale formats: money from
// integer minor units, 24-hour times, durations and the hub's errors in Chinese and English.
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { TABLES, t, setLang, pickLang, formatMoney, formatClock, formatDateTime, formatDuration, formatDay,
  errorText, currencyDigits } from "../src/i18n.js";
import { parseMoney } from "../src/ui.js";
import { readFileSync } from "node:fs";

afterEach(() => setLang("en"));

const placeholders = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

test("both tables have the same keys, every sentence in both, with the same placeholders", () => {
  assert.deepEqual(Object.keys(TABLES["zh-CN"]).sort(), Object.keys(TABLES.en).sort());
  for (const [key, en] of Object.entries(TABLES.en)) {
    const zh = TABLES["zh-CN"][key];
    assert.ok(en && zh, key);
    assert.deepEqual(placeholders(zh), placeholders(en), key);
    if (/[a-z]{3}/i.test(en) && !/^(SF|OK)/.test(en)) assert.match(zh, /[\u4e00-\u9fff]/, `${key} is not translated`);
  }
});

test("every error code of docs/protocol.md has words in both languages", () => {
  const all = readFileSync(new URL("../../docs/protocol.md", import.meta.url), "utf8");
  const doc = all.slice(0, all.indexOf("## Close codes")); // error codes, not close codes
  const codes = new Set([...doc.matchAll(/^\|\s*`?(\d{4})`?\s*\|/gm)].map((m) => Number(m[1])));
  assert.ok(codes.size >= 20, `found ${codes.size} codes`);
  for (const lang of ["en", "zh-CN"]) {
    setLang(lang);
    const generic = [t("errGeneric"), t("errPaymentRefused")];
    for (const code of codes) {
      const words = errorText({ code });
      assert.ok(words && !generic.includes(words), `${lang}: no words of its own for ${code}`);
    }
  }
});

test("pickLang: the first tag in a language we speak (Chinese to zh-CN), else English", () => {
  assert.equal(pickLang("zh"), "zh-CN");
  assert.equal(pickLang("zh-Hans-CN"), "zh-CN");
  assert.equal(pickLang("ZH-tw"), "zh-CN");
  assert.equal(pickLang("", "en-GB"), "en");
  assert.equal(pickLang("", null, "zh-CN"), "zh-CN");
  assert.equal(pickLang("fr", "zh"), "zh-CN"); // a page in French, a browser in Chinese
  assert.equal(pickLang("fr", "de"), "en");
  assert.equal(pickLang(), "en");
});

test("t fills placeholders and falls back to nothing silently never", () => {
  setLang("zh-CN");
  assert.equal(t("isTyping", { name: "茶行" }), "茶行 正在输入…");
  setLang("en");
  assert.equal(t("isTyping", { name: "Tea" }), "Tea is typing…");
  assert.throws(() => t("noSuchKey"));
});

test("CNY from integer minor units: ¥ and two decimals in both languages; JPY has none", () => {
  for (const lang of ["zh-CN", "en"]) {
    setLang(lang);
    assert.equal(formatMoney(12800, "CNY"), "¥128.00");
    assert.equal(formatMoney(123456789, "CNY"), "¥1,234,567.89");
    assert.equal(formatMoney(5, "CNY"), "¥0.05");
    assert.equal(formatMoney(1500, "JPY"), "¥1,500");
  }
  assert.equal(currencyDigits("CNY"), 2);
  assert.equal(currencyDigits("JPY"), 0);
  assert.equal(parseMoney("¥1,280.5", "CNY"), 128050);
  assert.equal(parseMoney("1500", "JPY"), 1500);
});

test("times are 24-hour in both languages", () => {
  const evening = new Date(2026, 11, 2, 21, 5).getTime();
  const morning = new Date(2026, 11, 2, 9, 7).getTime();
  for (const lang of ["zh-CN", "en"]) {
    setLang(lang);
    assert.equal(formatClock(evening), "21:05");
    assert.equal(formatClock(morning), "09:07");
    assert.doesNotMatch(formatDateTime(evening), /PM|AM|下午|上午/);
    assert.match(formatDateTime(evening), /21:05/);
  }
  setLang("zh-CN");
  assert.match(formatDateTime(evening), /2026年12月2日/);
});

test("days and durations in words", () => {
  const now = new Date(2026, 11, 2, 12, 0).getTime();
  setLang("zh-CN");
  assert.equal(formatDay(now - 3600e3, now), "今天");
  assert.equal(formatDay(now - 24 * 3600e3, now), "昨天");
  assert.equal(formatDay(new Date(2026, 10, 20).getTime(), now), "2026年11月20日");
  assert.equal(formatDuration(42e3), "42 秒");
  assert.equal(formatDuration(3 * 3600e3 + 10 * 60e3), "3 小时 10 分钟");
  setLang("en");
  assert.equal(formatDay(now - 3600e3, now), "Today");
  assert.equal(formatDuration(5 * 60e3), "5 min");
  assert.equal(formatDuration((9 * 24 + 23) * 3600e3), "9 days 23 h");
});

test("errors in words per language, with the PIN tries left", () => {
  setLang("zh-CN");
  assert.equal(errorText({ code: 6040, details: { attempts_left: 2 } }), "支付密码错误。还剩 2 次机会。");
  assert.equal(errorText({ code: "disconnected" }), "连接已断开，请检查网络后重试。");
  assert.equal(errorText({ code: 6999 }), "支付被拒绝，未扣款。");
  setLang("en");
  assert.equal(errorText({ code: 6040, details: { attempts_left: 1 } }), "Wrong payment PIN. 1 try left.");
  assert.equal(errorText({ code: 1234 }), "That did not work. Please try again.");
});
