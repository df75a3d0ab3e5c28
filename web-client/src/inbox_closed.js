// Closed conversations in the back office: a closed conversation leaves the active inbox list (a
// toggle shows the closed ones), comes back by itself when the buyer writes, and an agent can
// close or reopen it from the conversation's header. The buyer sees nothing of this.
//
// What is closed comes from the hub: asked with `closed` for every listed conversation after the
// first sync of a connection, then kept up to date by the `conv_state` frames every agent of the
// shop receives and by the rule the hub applies itself (a buyer message above the close's seq
// reopens it). Later syncs (the inbox poll) ask again only for conversations that are new or moved:
// only a buyer's message, which moves it, can change its state without a conv_state.
import { h } from "./ui.js";
import { t } from "./i18n.js";

const ASK_AT_ONCE = 500; // the most ids one `closed` request may carry

export class ClosedInbox {
  constructor({ client, onChange }) {
    this.client = client;
    this.onChange = onChange;
    this.closed = new Map(); // conversation id -> { conv, by, at, seq }
    this.asked = new Map(); // conversation id -> its last_seq when the hub was last asked about it
    this.stale = true; // pushes may have been missed (not yet connected, or reconnecting): ask for all
    this.showClosed = false;
    this.asking = null;
    this.toggle = h("button.btn.small.closed-toggle", { type: "button", "aria-pressed": "false",
      onclick: () => {
        this.showClosed = !this.showClosed;
        onChange();
      } });
    client.addEventListener("synced", () => this.refresh());
    client.addEventListener("status", () => {
      if (!["online", "connecting"].includes(client.status)) this.stale = true;
    });
    client.addEventListener("frame", (ev) => this.onFrame(ev.detail));
    client.addEventListener("message", (ev) => this.onMessage(ev.detail));
  }

  isClosed(convId) {
    return this.closed.has(convId);
  }

  /** Whether the inbox lists `conv` now: the active ones, or (toggled) the closed ones. */
  listed(conv) {
    return this.isClosed(conv.id) === this.showClosed;
  }

  /** Ask the hub which of the conversations we hold are closed: all of them after a (re)connect,
   * else those that are new or moved since we last asked. */
  async refresh() {
    const c = this.client;
    if (c.status !== "online" && c.status !== "connecting") return;
    if (this.asking) return this.asking;
    this.asking = (async () => {
      const full = this.stale;
      const convs = [...c.conversations.values()].filter((conv) => full || this.asked.get(conv.id) !== conv.view.last_seq);
      const found = new Map();
      try {
        for (let i = 0; i < convs.length; i += ASK_AT_ONCE) {
          const chunk = convs.slice(i, i + ASK_AT_ONCE);
          const reply = await c.request({ type: "closed", convs: chunk.map((conv) => conv.id) });
          for (const state of reply.closed) found.set(state.conv, state);
          for (const conv of chunk) this.asked.set(conv.id, conv.view.last_seq);
        }
        if (full) this.closed = found;
        else for (const conv of convs) {
          if (found.has(conv.id)) this.closed.set(conv.id, found.get(conv.id));
          else this.closed.delete(conv.id);
        }
        this.stale = false;
      } catch {
        /* offline: keep what we knew; the next sync asks again */
      } finally {
        this.asking = null;
      }
      this.onChange();
    })();
    return this.asking;
  }

  onFrame(frame) {
    if (frame.type !== "conv_state") return;
    if (frame.closed) this.closed.set(frame.conv, frame);
    else this.closed.delete(frame.conv);
    this.onChange();
  }

  onMessage({ conv, msg }) {
    const state = this.closed.get(conv.id);
    if (state && msg.role === "buyer" && msg.seq > state.seq) this.closed.delete(conv.id);
  }

  /** The inbox head's toggle between the active and the closed conversations. */
  renderToggle() {
    let n = 0;
    for (const id of this.client.conversations.keys()) if (this.closed.has(id)) n++;
    this.toggle.textContent = this.showClosed ? t("showActive") : t("showClosed", { n });
    this.toggle.setAttribute("aria-pressed", String(this.showClosed));
    this.toggle.hidden = !n && !this.showClosed;
  }

  /** The conversation header's close or reopen button. */
  button(conv) {
    const closed = this.isClosed(conv.id);
    return h("button.btn.small.conv-state", { type: "button", dataset: { action: closed ? "conv-reopen" : "conv-close" },
      title: t(closed ? "reopenConvHint" : "closeConvHint") }, t(closed ? "reopenConv" : "closeConv"));
  }

  /** A conv-close / conv-reopen click; errors go to the caller's toast. */
  async act(action, conv) {
    const type = action === "conv-close" ? "close" : "reopen";
    await this.client.request({ type, conv: conv.id });
    // The hub's conv_state follows; this side moves at once.
    if (type === "close") this.closed.set(conv.id, { conv: conv.id, by: this.client.me.user, at: this.client.now(), seq: conv.view.last_seq });
    else this.closed.delete(conv.id);
    this.onChange();
  }
}
