// The arbiter's desk: the open disputes (nearest decision deadline first) and the reports the
// parties made; a conversation opened read-only (messages, pictures, payment cards; no composer);
// its signed evidence package saved as JSON; and a dispute's decision (release, refund or split)
// with the `decide` money command, whose idempotency key is made once per dialog and reused on
// every retry; an after-sale dispute shows the buyer's claim, and its decisions keep the money with
// the shop, pay the claim or pay part of it. Arbiters only: the hub refuses these requests to
// other roles (docs/protocol.md).
import { ChatClient, randomId } from "./client.js";
import { Conversation } from "./protocol.js";
import { h, money, parseMoney, modal, wordsError, errorWords, duration, staffStatusWords } from "./ui.js";
import { renderThread } from "./thread.js";
import { tickTimers, orderStateLabel } from "./cards.js";
import { AFTER_SALE_STATES, checkPart } from "./after_sale.js";
import { agentNames } from "./agent_names.js";
import { Pictures } from "./pictures.js";
import { t, setLang, pickLang, formatDateTime } from "./i18n.js";

const REFRESH_MS = 30000;
const HISTORY_PAGE = 200;
const REPORT_PAGES = 20; // at most this many pages of 200 reports on the desk

/** An arbiter has no inbox to resume (`sync` is for the parties): the desk asks for its lists. */
class ArbiterClient extends ChatClient {
  async _sync() {
    this._emit("synced", { conversations: [] });
  }
}

export function startArbiterDesk({ root, hub, getToken, demo = false, refreshMs = REFRESH_MS,
  lang = document.documentElement.lang || navigator.language }) {
  document.documentElement.lang = setLang(pickLang(lang));
  const client = new ArbiterClient({ url: hub.replace(/^http/, "ws") + "/ws", getToken, storageKey: "tradechat:arbiter" });
  const state = { disputes: [], reports: [], more: false, selected: null, toast: "", ok: false, fatal: null, loaded: false };
  const names = agentNames(client);
  const pictures = new Pictures({ hub, getToken, onChange: () => renderConversation() });

  // --- layout -----------------------------------------------------------------------------------
  const statusEl = h("span.conn", { role: "status" });
  const whoEl = h("span.who");
  const refresh = h("button.btn.small.refresh", { type: "button" }, t("arbRefresh"));
  const topbar = h("header.topbar",
    h("div.brand", demo ? h("span.badge.demo-flag", "DEMO") : null, " ", h("b", t("arbDesk"))), whoEl, statusEl, refresh);
  const disputesHead = h("h2", { id: "arb-disputes-h" }, t("arbDisputes"));
  const disputesList = h("ul.desk-list.disputes", { "aria-labelledby": "arb-disputes-h" });
  const reportsHead = h("h2", { id: "arb-reports-h" }, t("arbReports"));
  const reportsList = h("ul.desk-list.reports", { "aria-labelledby": "arb-reports-h" });
  const lists = h("aside.desk-lists", { "aria-label": t("arbWorkLists") },
    h("section.desk-section", disputesHead, disputesList), h("section.desk-section", reportsHead, reportsList));
  const back = h("button.btn.small.desk-back", { type: "button", "aria-label": t("arbBackToLists") }, "← " + t("arbLists"));
  const title = h("h2.desk-title", { tabindex: -1 });
  const download = h("button.btn.small.download", { type: "button" }, t("arbDownload"));
  const readOnly = h("span.badge.read-only", t("arbReadOnly"));
  const facts = h("div.desk-facts");
  const decidePanel = h("div.decide-panel");
  const toastEl = h("div.toast", { role: "status", hidden: true });
  const list = h("div.messages", { role: "log", "aria-label": t("messages"), tabindex: 0 });
  const convHead = h("div.desk-head", back, h("div.desk-head-main", title, facts), readOnly, download);
  const convEl = h("section.desk-conv", { "aria-labelledby": "arb-title" }, convHead, decidePanel, toastEl, list);
  title.id = "arb-title";
  const empty = h("div.placeholder.desk-empty", t("arbChoose"));
  const main = h("main.desk", lists, convEl, empty);
  root.replaceChildren(topbar, main);
  convEl.hidden = true;

  // --- events -----------------------------------------------------------------------------------
  client.addEventListener("status", () => {
    renderStatus();
    if (client.status === "online") loadLists();
  });
  client.addEventListener("fatal", (ev) => {
    state.fatal = ev.detail.code;
    renderStatus();
  });
  client.addEventListener("welcome", (ev) => { whoEl.textContent = ev.detail.user; });
  client.addEventListener("agents", () => renderConversation());
  refresh.addEventListener("click", () => loadLists(true));
  back.addEventListener("click", () => closeConversation());
  download.addEventListener("click", () => downloadEvidence());
  main.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && state.selected && !document.querySelector(".backdrop")) closeConversation();
  });
  lists.addEventListener("click", (ev) => {
    const item = ev.target.closest("button[data-conv]");
    if (item) openConversation(item.dataset.conv, Number(item.dataset.seq) || 0);
  });
  decidePanel.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-outcome]");
    if (button) decide(button.dataset.order, button.dataset.outcome);
  });
  setInterval(() => {
    if (client.status === "online" && !document.hidden) loadLists();
  }, refreshMs);
  setInterval(() => {
    tickTimers(list, client.now());
    renderDeadlines();
  }, 1000);

  // --- the two lists ----------------------------------------------------------------------------
  async function loadLists(announce = false) {
    try {
      const disputes = await client.request({ type: "disputes", limit: 200 });
      const reports = [];
      let after = 0;
      for (let page = 0; page < REPORT_PAGES; page += 1) {
        const got = await client.request({ type: "reports", after, limit: 200 });
        reports.push(...got.reports);
        if (got.next_after === null || got.next_after === undefined) break;
        after = got.next_after;
      }
      state.disputes = disputes.disputes;
      state.more = disputes.more;
      state.reports = reports.reverse(); // newest first
      state.loaded = true;
      if (announce) say(t("arbRefreshed"), true);
    } catch (err) {
      say(errorWords(err));
    }
    renderLists();
    renderConversation();
  }

  function deadlineWords(at) {
    if (!at) return "";
    const left = at - client.now();
    return left > 0 ? t("arbDecideWithin", { d: duration(left) }) : t("arbOverdue");
  }

  /** An after-sale dispute's claim, or null for a dispute over held money. The disputes list names
   * no state and no claim: escrow holds nothing of a released order (`held` 0), and the claim is
   * read from the order's card once the conversation is loaded (amount null until then). */
  function claimOf(d) {
    const conv = client.conversations.get(d.conv);
    const card = conv && conv.cards.get(d.order);
    if (d.held !== 0 && !(card && AFTER_SALE_STATES.has(card.state))) return null;
    const v = card ? card.view : {};
    return { amount: v.after_sale_amount || null, reason: v.after_sale_reason || null };
  }

  function renderLists() {
    const disputes = state.disputes.map((d) => h("li",
      h("button.desk-item.dispute" + (d.conv === state.selected ? ".selected" : ""), {
        type: "button", dataset: { conv: d.conv, order: d.order }, "aria-current": d.conv === state.selected ? "true" : null },
      h("div.desk-item-top", h("b.desk-item-title", d.title), h("span.desk-amount", !claimOf(d) ? money(d.held, d.currency)
        : claimOf(d).amount ? money(claimOf(d).amount, d.currency) : "")),
      claimOf(d) ? h("div.desk-item-line.after-sale", t("arbAfterSale"), claimOf(d).amount ? ""
        : " · " + t("arbClaimOrder", { amount: money(d.amount, d.currency) })) : null,
      h("div.desk-deadline" + (d.deadline_at && d.deadline_at < client.now() ? ".late" : ""),
        { dataset: { deadline: d.deadline_at || "" } }, deadlineWords(d.deadline_at)),
      h("div.desk-item-line", t("arbParties", { buyer: d.buyer, shop: d.shop })),
      d.dispute_reason ? h("div.desk-item-line.reason", t("arbWhy", { reason: d.dispute_reason })) : null)));
    if (!disputes.length) disputes.push(h("li.none", t(state.loaded ? "arbNoDisputes" : "connecting")));
    if (state.more) disputes.push(h("li.none", t("arbMoreDisputes")));
    const reports = state.reports.map((r) => h("li",
      h("button.desk-item.report" + (r.conv === state.selected ? ".selected" : ""), {
        type: "button", dataset: { conv: r.conv, seq: r.seq, report: r.id }, "aria-current": r.conv === state.selected ? "true" : null },
      h("div.desk-item-top", h("b.desk-item-title", r.reason), h("span.muted", formatDateTime(r.created_at))),
      h("div.desk-item-line", t(r.side === "buyer" ? "arbReportedByBuyer" : "arbReportedByShop", { who: r.reporter })),
      h("div.desk-item-line.quote", r.seq ? t("arbReportedMessage", { text: messageText(r.message) }) : t("arbWholeConversation")))));
    if (!reports.length) reports.push(h("li.none", t(state.loaded ? "arbNoReports" : "connecting")));
    disputesHead.textContent = t("arbDisputesN", { n: state.disputes.length });
    reportsHead.textContent = t("arbReportsN", { n: state.reports.length });
    const focused = lists.contains(document.activeElement) ? document.activeElement : null;
    const key = focused && focused.dataset ? focused.dataset.order || focused.dataset.report : null;
    disputesList.replaceChildren(...disputes);
    reportsList.replaceChildren(...reports);
    if (key) lists.querySelector(`[data-order="${CSS.escape(key)}"], [data-report="${CSS.escape(key)}"]`)?.focus();
  }

  function renderDeadlines() {
    for (const el of main.querySelectorAll(".desk-deadline[data-deadline]")) {
      const at = Number(el.dataset.deadline);
      if (!at) continue;
      el.textContent = deadlineWords(at);
      el.classList.toggle("late", at < client.now());
    }
  }

  function messageText(msg) {
    if (!msg) return "";
    if (msg.recalled) return t("arbRecalled");
    if (msg.kind === "text") return msg.body.text;
    if (msg.kind === "image") return t("picture");
    return msg.kind;
  }

  // --- one conversation, read-only --------------------------------------------------------------
  async function openConversation(convId, seq = 0) {
    const first = state.selected !== convId;
    state.selected = convId;
    if (first) {
      const dispute = state.disputes.find((d) => d.conv === convId);
      const report = state.reports.find((r) => r.conv === convId);
      const who = dispute || report;
      client.conversations.set(convId, new Conversation({ id: convId, buyer: who ? who.buyer : "", shop: who ? who.shop : "",
        listing: null, agent: null, last_seq: 0, unread: 0, read: { buyer: 0, shop: 0 }, created_at: 0, last_message: null }));
      client._emit("conversation", client.conversations.get(convId)); // the shop's agents' names are asked for
      state.toast = "";
    }
    main.classList.add("showing-conv");
    renderLists();
    renderConversation();
    title.focus();
    try {
      await loadHistory(convId);
    } catch (err) {
      say(errorWords(err));
    }
    renderLists(); // an after-sale dispute's claim is known now (from the order's card)
    renderConversation({ stick: !seq });
    if (seq) list.querySelector(`[data-seq="${seq}"]`)?.scrollIntoView({ block: "center" });
  }

  /** Every message of the conversation: forward from what is held, else the latest pages back. */
  async function loadHistory(convId) {
    const conv = client.conversations.get(convId);
    if (conv.maxSeq) {
      for (;;) {
        const page = await client.request({ type: "history", conv: convId, after: conv.maxSeq, limit: HISTORY_PAGE });
        for (const msg of page.messages) client._store(conv, msg, false);
        if (!page.more || !page.messages.length) break;
      }
    } else {
      let before;
      for (;;) {
        const page = await client.request({ type: "history", conv: convId, before, limit: HISTORY_PAGE });
        for (const msg of page.messages) client._store(conv, msg, false);
        conv.more = page.more;
        if (!page.more || !page.messages.length) break;
        before = page.messages[0].seq;
      }
    }
    conv.more = false;
  }

  function closeConversation() {
    const was = state.selected;
    state.selected = null;
    main.classList.remove("showing-conv");
    renderLists();
    renderConversation();
    lists.querySelector(`button[data-conv="${CSS.escape(was || "")}"]`)?.focus();
  }

  function renderConversation(opts = {}) {
    const conv = state.selected && client.conversations.get(state.selected);
    convEl.hidden = !conv;
    empty.hidden = !!conv;
    if (!conv) return;
    const v = conv.view;
    title.textContent = t("arbConversation", { buyer: v.buyer || "?", shop: v.shop || "?" });
    facts.replaceChildren(h("span.muted", conv.id));
    const reported = state.reports.filter((r) => r.conv === conv.id);
    if (reported.length) facts.append(" · ", h("span.muted", t("arbReportsHere", { n: reported.length })));
    renderDecisions(conv);
    toastEl.textContent = state.toast;
    toastEl.hidden = !state.toast;
    toastEl.classList.toggle("ok", state.ok);
    renderThread(list, conv, { ...opts, client, role: "arbiter", counterpartSide: "buyer", delivered: () => false,
      canRecall: () => false, agents: names, pictures });
    for (const r of reported) {
      const row = r.seq && list.querySelector(`[data-seq="${r.seq}"]`);
      if (row && !row.classList.contains("reported")) {
        row.classList.add("reported");
        row.append(h("div.reported-tag", t("arbReportedTag", { reason: r.reason })));
      }
    }
  }

  function renderDecisions(conv) {
    const open = state.disputes.filter((d) => d.conv === conv.id);
    decidePanel.hidden = !open.length;
    decidePanel.replaceChildren(...open.map((d) => {
      const claim = claimOf(d);
      const words = claim ? ["arbKeep", "arbPayClaim", "arbPayPart"] : ["arbRelease", "arbRefund", "arbSplit"];
      const what = claim
        ? [h("span.badge.after-sale", t("arbAfterSale")), " ",
          claim.amount ? h("span.claim", t("arbClaim", { amount: money(claim.amount, d.currency) }) + " · ") : null,
          h("span", t("arbClaimOrder", { amount: money(d.amount, d.currency) })),
          claim.reason ? h("span.claim-reason", ` · “${claim.reason}”`) : null]
        : [h("span", t("arbHeld", { amount: money(d.held, d.currency) })),
          d.refund_amount ? h("span", " · " + t("arbAsked", { amount: money(d.refund_amount, d.currency) })) : null];
      return h("div.decide", { dataset: { order: d.order, afterSale: claim ? "1" : "0" } },
        h("div.decide-text", h("b", t("arbDecideTitle", { title: d.title })), " ", what,
          " · ", h("span.desk-deadline", { dataset: { deadline: d.deadline_at || "" } }, deadlineWords(d.deadline_at))),
        h("div.decide-actions", { role: "group", "aria-label": t("arbDecideGroup", { title: d.title }) },
          ["release", "refund", "split"].map((outcome, i) =>
            h("button.btn.small", { type: "button", dataset: { order: d.order, outcome } }, t(words[i])))));
    }));
  }

  // --- evidence and decisions -------------------------------------------------------------------
  async function downloadEvidence() {
    const convId = state.selected;
    if (!convId) return;
    download.disabled = true;
    try {
      const reply = await client.request({ type: "evidence", conv: convId }, 60000);
      const blob = new Blob([JSON.stringify(reply.package, null, 2) + "\n"], { type: "application/json" });
      const url = URL.createObjectURL(blob);
      const a = h("a", { href: url, download: `evidence-${convId}.json` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      say(t("arbDownloaded", { n: reply.package.chain ? reply.package.chain.length : 0 }), true);
    } catch (err) {
      say(errorWords(err));
    } finally {
      download.disabled = false;
    }
  }

  async function decide(orderId, outcome) {
    const d = state.disputes.find((x) => x.order === orderId);
    if (!d) return;
    const key = randomId("decide").slice(0, 40); // one key per decision, kept across retries
    const run = (extra = {}) => client.money({ type: "decide", conv: d.conv, order: d.order, outcome, key, ...extra });
    // An after-sale claim: the shop keeps the money, pays the claim or part of it (6011 when its
    // balance and deposit cannot pay: the dialog says how much they hold).
    const claim = claimOf(d);
    const amount = money(claim ? claim.amount || d.amount : d.held, d.currency);
    const fields = outcome === "split"
      ? [{ name: "buyer", label: t("arbSplitLabel", { currency: d.currency }), inputmode: "decimal" }] : [];
    const keys = claim ? { release: "arbKeep", refund: "arbPayClaim", split: "arbPayPart" }[outcome]
      : { release: "arbRelease", refund: "arbRefund", split: "arbSplit" }[outcome];
    const done = await modal(document.body, {
      title: t(keys + "Q"), text: t(keys + "Text", { amount }), fields, submit: t("arbDecide"),
      onSubmit: ({ buyer }) => {
        if (outcome !== "split") return run();
        if (claim) return run({ buyer_amount: checkPart(buyer, claim.amount || d.amount, d.currency) });
        const part = parseMoney(buyer || "", d.currency);
        if (!part || part >= d.held) throw wordsError(t("arbSplitRange", { amount }));
        return run({ buyer_amount: part });
      },
    });
    if (!done) return;
    say(t("arbDecided", { state: orderStateLabel(done.view.state) }), true);
    await loadLists();
    if (state.selected === d.conv) {
      try {
        await loadHistory(d.conv);
      } catch (err) {
        say(errorWords(err));
      }
      renderConversation({ stick: true });
    }
  }

  function say(words, ok = false) {
    state.toast = words;
    state.ok = ok;
    toastEl.textContent = words;
    toastEl.hidden = !words || !state.selected;
    toastEl.classList.toggle("ok", ok);
    if (!state.selected && words) statusEl.title = words;
  }

  function renderStatus() {
    statusEl.textContent = staffStatusWords(client, state.fatal);
    statusEl.dataset.status = client.status;
  }

  renderStatus();
  renderLists();
  client.start();
  return { client, refresh: () => loadLists(), open: openConversation };
}
