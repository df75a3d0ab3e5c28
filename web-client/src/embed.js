/*
 * The embed script for listing pages. It reads its own data- attributes, puts the chat
 * widget (a page served by the hub) in an iframe in the corner of the page, and turns the
 * page's command queue into a live API:
 *
 *   window.tradechat = window.tradechat || [];
 *   tradechat.push(["identify", tokenOrAsyncFunctionReturningAToken]);
 *   tradechat.push(["open"]);  tradechat.push(["close"]);
 *   tradechat.push(["onUnreadChange", function (count) { ... }]);
 *
 * The iframe keeps the host page's CSS and scripts away from the chat (and its payment PIN
 * field). The frame itself is on the page, so: every style this script sets on it is inline and
 * !important (which beats any page rule, `[title] { outline: … !important }` included), and it
 * sits in the browser's top layer (a manual popover) where supported, so that a transform,
 * filter or `contain` on <body> or any ancestor does not make `position: fixed` relative to
 * that ancestor and carry the launcher off-screen; elsewhere it hangs from <html>, not <body>.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__tradechatLoaded) return;
  window.__tradechatLoaded = true;
  var d = script.dataset;
  var hub = (d.hub || new URL(script.src).origin).replace(/\/+$/, "");
  var hubOrigin = new URL(hub, location.href).origin;
  var params = new URLSearchParams({
    shop: d.shop || "",
    shopName: d.shopName || "",
    listing: JSON.stringify({
      id: d.listingId,
      title: d.listingTitle,
      price: parseInt(d.listingPrice, 10),
      currency: d.listingCurrency || "CNY",
      image: d.listingImage ? new URL(d.listingImage, location.href).href : null,
    }),
    listingToken: d.listingToken || "",
    // The widget speaks data-lang ("zh-CN", "en"), else the page's own language.
    lang: d.lang || document.documentElement.lang || "",
  });

  var frame = document.createElement("iframe");
  // The frame's name for screen readers, in the widget's language (it renames itself on "ready").
  frame.title = /^zh/i.test(d.lang || document.documentElement.lang || "") ? "联系卖家" : "Chat with the shop";
  frame.setAttribute("allow", "clipboard-write; autoplay");
  frame.src = hub + "/web/widget.html#" + params.toString();
  var state = { open: false, ready: false, unread: 0, token: null, listeners: [], queue: [], asked: false };
  var phone = window.matchMedia("(max-width: 600px)");

  function css(el, styles) {
    for (var k in styles) el.style.setProperty(k, styles[k], "important");
  }
  function layout() {
    var base = { position: "fixed", border: "0", margin: "0", padding: "0", "z-index": "2147483000",
      background: "transparent", "color-scheme": "normal", display: "block", "max-width": "none",
      "max-height": "none", "min-width": "0", "min-height": "0", transform: "none", opacity: "1",
      visibility: "visible", "box-shadow": "none", "border-radius": "0", inset: "auto",
      outline: "none", filter: "none", "backdrop-filter": "none", "clip-path": "none", mask: "none",
      translate: "none", rotate: "none", scale: "none", transition: "none", animation: "none",
      "mix-blend-mode": "normal", "pointer-events": "auto", "box-sizing": "border-box", float: "none",
      overflow: "hidden", contain: "none", zoom: "1" };
    if (!state.open) {
      base.right = "16px"; base.bottom = "16px"; base.width = "76px"; base.height = "76px";
    } else if (phone.matches) {
      base.top = "0"; base.left = "0"; base.width = "100vw"; base.height = "100%";
    } else {
      base.right = "16px"; base.bottom = "16px"; base.width = "400px";
      base.height = "min(640px, calc(100vh - 32px))";
    }
    css(frame, base);
  }
  phone.addEventListener("change", layout);
  layout();

  function post(message) {
    if (state.ready) frame.contentWindow.postMessage(Object.assign({ tradechat: 1 }, message), hubOrigin);
    else state.queue.push(message);
  }
  var tokenProvider = null;
  function identify(token) {
    if (typeof token === "function") {
      tokenProvider = token;
      post({ cmd: "identify", provider: true });
    } else {
      tokenProvider = null;
      post({ cmd: "identify", token: token || null });
    }
  }

  window.addEventListener("message", function (ev) {
    if (ev.source !== frame.contentWindow || ev.origin !== hubOrigin || !ev.data || !ev.data.tradechat) return;
    var m = ev.data;
    if (m.event === "ready") {
      state.ready = true;
      if (typeof m.title === "string") frame.title = m.title;
      var queued = state.queue;
      state.queue = [];
      queued.forEach(post);
    } else if (m.event === "layout") {
      state.open = !!m.open;
      layout();
      // Opened from the page (a button, a script): keyboard focus follows into the chat, where the
      // widget puts it on the message box.
      if (state.open) frame.focus();
    } else if (m.event === "unread") {
      state.unread = m.count;
      titleUnread(m.count);
      state.listeners.forEach(function (fn) {
        try { fn(m.count); } catch (e) { setTimeout(function () { throw e; }); }
      });
    } else if (m.event === "notify") {
      notify(m.title, m.body);
    } else if (m.event === "ask-notify") {
      askNotify();
    } else if (m.event === "token") {
      // The widget needs a (fresh) token: ask the page's provider. A provider that rejects or
      // throws is reported as failed (the widget retries with backoff), not as "signed out".
      new Promise(function (resolve) { resolve(tokenProvider ? tokenProvider() : null); }).then(function (token) {
        post({ cmd: "token", rid: m.rid, token: token || null });
      }, function () {
        post({ cmd: "token", rid: m.rid, token: null, failed: true });
      });
    }
  });

  // The unread count in front of the page's title, "(2) …" (data-title-unread="off" leaves the
  // title alone). A title the page sets itself later becomes the new base.
  var titleBase = null, titleSet = null;
  function titleUnread(count) {
    if (d.titleUnread === "off") return;
    if (document.title !== titleSet) titleBase = document.title;
    titleSet = (count > 0 ? "(" + (count > 99 ? "99+" : count) + ") " : "") + titleBase;
    document.title = titleSet;
  }

  // Desktop notifications are the page's (browsers do not let a cross-origin frame ask): shown
  // only when the buyer allowed them, asked for only right after a gesture in the chat (the
  // frame's user activation counts for this page too) and at most once per page view.
  // data-notifications="off" turns both off.
  var canNotify = typeof window.Notification === "function" && d.notifications !== "off";
  function askNotify() {
    if (!canNotify || state.asked || Notification.permission !== "default") return;
    state.asked = true;
    try {
      var asked = Notification.requestPermission();
      if (asked && asked.catch) asked.catch(function () {});
    } catch (e) {
      /* an old browser's callback-only form: nothing to do */
    }
  }
  function notify(title, body) {
    if (!canNotify || Notification.permission !== "granted") return;
    try {
      var n = new Notification(title, { body: body, tag: "tradechat:" + (d.shop || ""), lang: d.lang || document.documentElement.lang || "" });
      n.onclick = function () {
        window.focus();
        post({ cmd: "open" });
        n.close();
      };
    } catch (e) {
      /* phones: only a service worker may show notifications; the title and chime still tell */
    }
  }

  var api = {
    push: function (command) {
      if (!command || !command.length) return;
      var name = command[0], arg = command[1];
      if (name === "identify") identify(arg);
      else if (name === "open") post({ cmd: "open" });
      else if (name === "close") post({ cmd: "close" });
      else if (name === "onUnreadChange" && typeof arg === "function") {
        state.listeners.push(arg);
        arg(state.unread);
      } else if (window.console) console.warn("tradechat: unknown command", name);
    },
  };
  var pending = Array.isArray(window.tradechat) ? window.tradechat : [];
  window.tradechat = api;
  document.documentElement.appendChild(frame);
  if (typeof frame.showPopover === "function") {
    frame.setAttribute("popover", "manual");
    try {
      frame.showPopover();
    } catch (e) {
      /* not in the top layer: still fixed to <html> */
    }
  }
  pending.forEach(api.push);
})();
