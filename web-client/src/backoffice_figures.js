// The shop's response figures in the back office header: first response and response rate
// over the last 7 days (the hub's `stats`), asked again every minute and shortly after a
// question or an answer moves them.
import { h, duration } from "./ui.js";
import { t } from "./i18n.js";

export class ResponseFigures {
  constructor(client) {
    this.client = client;
    this.stats = null;
    this.timer = null;
    this.el = h("div.figures", { "aria-live": "polite" });
    setInterval(() => this.refresh(), 60_000);
  }

  render() {
    const f = this.stats;
    if (!f) {
      this.el.replaceChildren(h("span.muted", t("figuresLoading")));
      return;
    }
    const first = f.first_response_p50_ms === null ? "–" : duration(f.first_response_p50_ms);
    const rate = f.response_rate === null ? "–" : `${Math.round(f.response_rate * 100)}% (${f.answered}/${f.asked})`;
    this.el.replaceChildren(
      h("span", h("b", t("firstResponse")), first), " · ",
      h("span", h("b", t("responseRate")), rate),
      h("span.muted", t("figuresNote")));
  }

  async refresh() {
    try {
      this.stats = await this.client.stats(7);
      this.render();
    } catch {
      /* offline: keep the last figures; the next refresh tries again */
    }
  }

  /** A question or an answer moves the figures: ask the hub again shortly (once per burst). */
  soon() {
    if (this.timer === null) this.timer = setTimeout(() => { this.timer = null; this.refresh(); }, 500);
  }
}
