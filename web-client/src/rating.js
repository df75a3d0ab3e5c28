// Rating the shop after a completed trade, from the order's card in the widget: three buttons
// (good, neutral, bad) on a released order, then a dialog for an optional comment and the item,
// service and shipping scores. The hub answers a rating it already has with the stored one, so the
// buttons come back on another device; this device remembers what it sent and shows that instead.
import { h, modal, wordsError } from "./ui.js";
import { t } from "./i18n.js";

const SCORES = { good: "rateGood", neutral: "rateNeutral", bad: "rateBad" };
const storageKey = (user, order) => `tradechat:rated:${user}:${order}`;

function remembered(user, order) {
  try {
    return localStorage.getItem(storageKey(user, order));
  } catch {
    return null;
  }
}

/** What a released order's card shows the buyer: the rating sent from here, or the buttons. */
export function ratingPart(card, me) {
  const score = remembered(me, card.id);
  if (SCORES[score]) return h("div.card-line.rated", t("ratedAs", { score: t(SCORES[score]) }));
  return h("div.card-actions.rate", { role: "group", "aria-label": t("rateShop") },
    h("span.rate-label", t("rateShop")),
    Object.entries(SCORES).map(([score, words]) => h("button.btn" + (score === "good" ? ".primary" : ""), {
      type: "button", dataset: { action: `rate-${score}`, entity: card.id } }, t(words))));
}

function stars(value) {
  const text = String(value || "").trim();
  if (!text) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 5) throw wordsError(t("rateStars"));
  return n;
}

/** The dialog behind a rate-good / rate-neutral / rate-bad button; resolves true once rated. */
export async function rateDialog(action, { client, conv, card, host }) {
  const score = action.slice("rate-".length);
  if (!SCORES[score]) return false;
  const done = await modal(host, {
    title: `${t(SCORES[score])} · ${t("rateTitle")}`, text: t("rateText"),
    fields: [
      { name: "comment", label: t("rateComment"), type: "textarea", maxlength: 500 },
      { name: "item", label: t("rateItem"), inputmode: "numeric", maxlength: 1, value: "5" },
      { name: "service", label: t("rateService"), inputmode: "numeric", maxlength: 1, value: "5" },
      { name: "shipping", label: t("rateShipping"), inputmode: "numeric", maxlength: 1, value: "5" },
    ],
    submit: t("rateSend"),
    onSubmit: async (values) => {
      const frame = { type: "rate", conv: conv.id, order: card.id, score, comment: values.comment.trim() || undefined,
        item: stars(values.item), service: stars(values.service), shipping: stars(values.shipping) };
      try {
        return await client.money(frame);
      } catch (err) {
        // Rated before (on another device, differently) or too late: say which it may be.
        if (err.code === 6021) throw wordsError(t("rateRefused"));
        throw err;
      }
    },
  });
  if (!done) return false;
  try {
    localStorage.setItem(storageKey(client.me.user, card.id), done.view.score);
  } catch {
    /* private mode: the buttons stay, and the hub answers a second rating with the first */
  }
  // The card's row is redrawn only when the order changes: show the rating in it now.
  const buttons = host.querySelector(`.card[data-entity="${CSS.escape(card.id)}"] .card-actions.rate`);
  if (buttons) buttons.replaceWith(ratingPart(card, client.me.user));
  return true;
}
