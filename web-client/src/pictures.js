// Pictures in the chat, shared by the widget and the back office: choose or paste a photo, upload
// it to the hub with progress (and say why when it fails), send it, show its thumbnail, and open
// it full size in a dialog.
//
// The hub keeps pictures behind an authorisation check (only the conversation's parties and the
// arbiter of a dispute). An <img> cannot send the token, so for each picture in a conversation the
// client asks the hub once for short-lived signed addresses (`GET /media/<sha>/link?conv=`) and
// uses those; they are fetched again shortly before they expire.
import { h, icon, wordsError } from "./ui.js";
import { t, errorText } from "./i18n.js";

const HUB_PICTURE = /^\/media\/[0-9a-f]{64}$/;
const ACCEPT = "image/jpeg,image/png,image/webp,image/gif";
const SHOWN = 200; // px: the longest side of a thumbnail in a bubble (common.css keeps to it)

/** Is `url` a picture kept by the hub (as opposed to an address elsewhere)? */
export function isHubPicture(url) {
  return typeof url === "string" && HUB_PICTURE.test(url);
}

export class Pictures {
  /** `hub`: the hub's origin; `getToken()`: the user's token; `onChange()`: addresses arrived. */
  constructor({ hub, getToken, onChange }) {
    this.hub = hub;
    this.getToken = getToken;
    this.onChange = onChange || (() => {});
    this.links = new Map(); // "conv url" -> { state: "ok"|"loading"|"failed", url, thumb, expires_at }
    this._config = null;
  }

  /** What the hub accepts and where uploads go (`GET /media`), asked once. */
  config() {
    if (!this._config) {
      this._config = fetch(this.hub + "/media").then((r) => {
        if (!r.ok) throw new Error("no picture uploads here");
        return r.json();
      });
      this._config.catch(() => { this._config = null; });
    }
    return this._config;
  }

  /** The signed addresses of a hub picture seen in `conv`, or a `loading`/`failed` state. */
  addresses(conv, url) {
    const key = conv + " " + url;
    const known = this.links.get(key);
    const soon = Date.now() / 1000 + 30;
    if (!known || (known.state === "ok" && known.expires_at < soon)) this._fetch(key, conv, url, known);
    return this.links.get(key);
  }

  /** Keep the addresses an upload answered with (the sender sees the picture at once). */
  remember(conv, answer) {
    this.links.set(conv + " " + answer.url, { state: "ok", ...answer.signed });
  }

  async _fetch(key, conv, url, known) {
    if (!known) this.links.set(key, { state: "loading" });
    else known.expires_at = Infinity; // one refresh at a time; the old addresses work meanwhile
    try {
      const token = await this.getToken();
      const r = await fetch(`${this.hub}${url}/link?conv=${encodeURIComponent(conv)}`,
        { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
      if (!r.ok) throw new Error(`link ${r.status}`);
      this.links.set(key, { state: "ok", ...(await r.json()) });
    } catch {
      this.links.set(key, { state: "failed" });
    }
    this.onChange();
  }

  /**
   * Upload `file` for `conv`; `onProgress(fraction)` as it goes. Resolves with the hub's answer
   * (its `body` is what to send), rejects with an error that has words for the user.
   */
  async upload(conv, file, onProgress) {
    let config;
    try {
      config = await this.config();
    } catch {
      throw wordsError(t("pictureUploadOff"));
    }
    if (!config.types.includes(file.type) && file.type) throw refusal({ code: 1007 });
    if (file.size > config.max_bytes) throw refusal({ code: 1008, details: { max_bytes: config.max_bytes } });
    const token = await this.getToken();
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `${config.upload_url}?conv=${encodeURIComponent(conv)}`);
      xhr.setRequestHeader("Authorization", "Bearer " + token);
      xhr.responseType = "json";
      xhr.upload.onprogress = (ev) => {
        if (ev.lengthComputable) onProgress(ev.loaded / ev.total);
      };
      xhr.onload = () => {
        if (xhr.status === 201 && xhr.response) resolve(xhr.response);
        else reject(refusal(xhr.response || { code: xhr.status >= 500 ? 5001 : 0 }));
      };
      xhr.onerror = () => reject(wordsError(t("pictureNetwork")));
      xhr.send(file);
    });
  }
}

function refusal(body) {
  let words = errorText(body);
  const details = body.details || body;
  if (body.code === 1008 && details.max_bytes) words += " " + t("pictureLimit", { mb: Math.round((details.max_bytes / 1048576) * 10) / 10 });
  return wordsError(words);
}

// --- the composer's picture button -----------------------------------------------------------

/**
 * A picture button (and paste into `textarea`) for a composer. `conv()` is the conversation to
 * send to, `send(conv, body)` sends the image message. Returns the button, the hidden file input
 * and the upload status line (to place above the composer).
 */
export function pictureComposer({ pictures, textarea, conv, send }) {
  const input = h("input.picture-input", { type: "file", accept: ACCEPT, hidden: true, tabindex: -1 });
  const button = h("button.icon-btn.picture-btn", { type: "button", "aria-label": t("attachPicture"),
    title: t("attachPicture") }, icon("camera"));
  const status = h("div.upload-status", { hidden: true });
  button.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    input.value = "";
    if (file) start(file);
  });
  textarea.addEventListener("paste", (ev) => {
    const file = [...((ev.clipboardData && ev.clipboardData.files) || [])].find((f) => f.type.startsWith("image/"));
    if (!file) return;
    ev.preventDefault();
    start(file);
  });

  function show(children, role) {
    status.setAttribute("role", role);
    status.replaceChildren(...children);
    status.hidden = false;
  }

  async function start(file) {
    const id = conv();
    if (!id) return;
    const bar = h("progress", { max: 100, value: 0, "aria-label": t("pictureUploading") });
    const words = h("span", t("pictureUploading"));
    show([words, bar], "status");
    try {
      const answer = await pictures.upload(id, file, (fraction) => {
        bar.value = Math.round(fraction * 100);
        words.textContent = t("pictureUploadingPct", { pct: bar.value });
      });
      pictures.remember(id, answer);
      status.hidden = true;
      status.replaceChildren();
      send(id, answer.body);
    } catch (err) {
      const retry = h("button.link", { type: "button" }, t("retry"));
      const dismiss = h("button.link", { type: "button" }, t("pictureDismiss"));
      retry.addEventListener("click", () => start(file));
      dismiss.addEventListener("click", () => { status.hidden = true; });
      show([h("span.failed", t("pictureNotSent"), " ", err.words || errorText(err)), " ", retry, " ", dismiss], "alert");
    }
  }

  return { input, button, status };
}

// --- in the thread ----------------------------------------------------------------------------

/** What a picture's row shows, for the thread's "rebuild only what changed" signature. */
export function pictureSignature(body, convId, pictures) {
  if (!pictures || !isHubPicture(body.url)) return "";
  const a = pictures.addresses(convId, body.url);
  return a.state === "ok" ? a.thumb : a.state;
}

/** The content of an image bubble: a thumbnail that opens full size, or a placeholder. */
export function pictureBubble(body, convId, pictures) {
  if (!pictures || !isHubPicture(body.url)) {
    return h("div.bubble.image", h("img", { src: body.url, alt: t("picture"), loading: "lazy",
      width: body.width, height: body.height }));
  }
  const size = fit(body.width, body.height);
  const a = pictures.addresses(convId, body.url);
  if (a.state !== "ok") {
    const words = t(a.state === "failed" ? "pictureUnavailable" : "pictureLoading");
    return h("div.bubble.image", h("div.picture-wait", { style: `width:${size.width}px;height:${size.height}px`,
      role: "img", "aria-label": words }, words));
  }
  const open = h("button.picture-open", { type: "button", "aria-label": t("pictureEnlarge") },
    h("img", { src: a.thumb, alt: t("picture"), loading: "lazy", ...size }));
  open.addEventListener("click", () => openViewer(open, pictures.addresses(convId, body.url).url || a.url));
  return h("div.bubble.image", open);
}

function fit(width, height) {
  if (!width || !height) return { width: SHOWN, height: Math.round(SHOWN * 0.75) };
  const scale = Math.min(1, SHOWN / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** The picture full size in a modal dialog: Escape, the close button or a click outside close it. */
export function openViewer(opener, src) {
  const host = opener.closest(".panel, .chat") || document.body;
  const close = h("button.icon-btn.viewer-close", { type: "button", "aria-label": t("pictureClose") }, icon("close"));
  const img = h("img.viewer-img", { src, alt: t("picture") });
  const dialog = h("div.dialog.viewer", { role: "dialog", "aria-modal": "true", "aria-label": t("pictureFull") },
    img, close);
  const backdrop = h("div.backdrop.viewer-backdrop", dialog);
  const done = () => {
    backdrop.remove();
    if (opener.isConnected) opener.focus();
  };
  close.addEventListener("click", done);
  backdrop.addEventListener("click", (ev) => {
    if (ev.target === backdrop) done();
  });
  backdrop.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      ev.stopPropagation(); // closes the picture, not the panel under it
      done();
    } else if (ev.key === "Tab") {
      ev.preventDefault(); // the close button is the only stop
      close.focus();
    }
  });
  host.append(backdrop);
  close.focus();
  return backdrop;
}
