// Pictures (pictures.js) without a browser: which addresses are the hub's, signed addresses asked
// once per picture and again before they expire, and uploads refused before any byte is sent.
import { test, mock, afterEach } from "node:test";
import assert from "node:assert/strict";
import { Pictures, isHubPicture } from "../src/pictures.js";
import { setLang } from "../src/i18n.js";

const SHA = "ab".repeat(32);
const URL_ = `/media/${SHA}`;
const LIMITS = { upload_url: "http://hub:9/media", max_bytes: 1000, types: ["image/jpeg", "image/png"] };

afterEach(() => {
  mock.restoreAll();
  setLang("en");
});

function fakeFetch(answers) {
  const asked = [];
  mock.method(globalThis, "fetch", async (url, options = {}) => {
    asked.push({ url, auth: (options.headers || {}).Authorization });
    const body = answers(url);
    return { ok: body !== null, status: body === null ? 404 : 200, json: async () => body };
  });
  return asked;
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

test("only /media/<sha256> is the hub's", () => {
  assert.equal(isHubPicture(URL_), true);
  assert.equal(isHubPicture("https://img.example/a.jpg"), false);
  assert.equal(isHubPicture(`/media/${SHA}/thumb`), false);
  assert.equal(isHubPicture("/media/../etc"), false);
});

test("addresses are asked once with the token, and again shortly before they expire", async () => {
  let expires = Date.now() / 1000 + 600;
  const asked = fakeFetch(() => ({ url: `${URL_}?sig=1`, thumb: `${URL_}/thumb?sig=1`, expires_at: expires }));
  let changes = 0;
  const pictures = new Pictures({ hub: "http://hub", getToken: async () => "tok", onChange: () => changes++ });
  assert.equal(pictures.addresses("c1", URL_).state, "loading");
  assert.equal(pictures.addresses("c1", URL_).state, "loading");
  await tick();
  await tick();
  assert.equal(asked.length, 1);
  assert.equal(asked[0].url, `http://hub${URL_}/link?conv=c1`);
  assert.equal(asked[0].auth, "Bearer tok");
  assert.equal(changes, 1);
  assert.equal(pictures.addresses("c1", URL_).thumb, `${URL_}/thumb?sig=1`);
  assert.equal(asked.length, 1);
  // about to expire: the old addresses are still shown while new ones are asked for
  pictures.links.get("c1 " + URL_).expires_at = Date.now() / 1000 + 10;
  expires += 600;
  assert.equal(pictures.addresses("c1", URL_).state, "ok");
  await tick();
  await tick();
  assert.equal(asked.length, 2);
});

test("a picture the hub will not show is marked failed", async () => {
  fakeFetch(() => null);
  const pictures = new Pictures({ hub: "http://hub", getToken: async () => "tok" });
  pictures.addresses("c1", URL_);
  await tick();
  await tick();
  assert.equal(pictures.addresses("c1", URL_).state, "failed");
});

test("too large or not a picture: refused in words before uploading", async () => {
  fakeFetch(() => LIMITS);
  const pictures = new Pictures({ hub: "http://hub", getToken: async () => "tok" });
  await assert.rejects(pictures.upload("c1", { size: 2000, type: "image/jpeg" }), /too large/);
  await assert.rejects(pictures.upload("c1", { size: 10, type: "application/pdf" }), /not a photo/);
  setLang("zh-CN");
  await assert.rejects(pictures.upload("c1", { size: 2000, type: "image/png" }), /照片太大/);
});
