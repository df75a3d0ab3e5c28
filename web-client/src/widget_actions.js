// The widget's dialogs: a picture by its address, and the money actions on payment cards (pay,
// cancel, confirm, more time, refund, dispute, transfers, rating the shop, an after-sale claim
// and its dispute: after_sale.js). Each money action makes its idempotency
// key once and reuses it on every retry of that action.
import { money, parseMoney, modal, wordsError } from "./ui.js";
import { randomId } from "./client.js";
import { t } from "./i18n.js";
import { rateDialog } from "./rating.js";
import { isAfterSaleAction, afterSaleDialog } from "./after_sale.js";

async function wallet(client) {
  try {
    const w = await client.request({ type: "wallet" });
    return (w.balances["user:" + client.me.user] || {});
  } catch {
    return null;
  }
}

const pinField = () => ({ name: "pin", label: t("pinLabel"), type: "password", inputmode: "numeric",
  maxlength: 6, autocomplete: "off" });

/** Run a money command; the key is made once per user action and reused on every retry. */
function moneyCommand(client, frame) {
  const key = randomId(frame.type).slice(0, 40);
  return async (values) => {
    const extra = typeof frame.build === "function" ? frame.build(values) : {};
    const { build, ...rest } = frame;
    if (values.pin !== undefined && !/^[0-9]{6}$/.test(values.pin)) throw wordsError(t("err6043"));
    const reply = await client.money({ ...rest, ...extra, key, ...(values.pin ? { pin: values.pin } : {}) });
    return reply;
  };
}

/**
 * Run the dialog behind `action` (a button's data-action) in `conv`; `card` is the payment card
 * the button belongs to, `say(words, ok)` shows the outcome under the messages.
 */
export async function dialogAction(action, { client: c, conv, card, host, listing: LISTING, say, target }) {
  const v = card ? card.view : {};
  if (action === "claim-offer") {
    // A broadcast's price: the hub makes the shop's order (once per broadcast and buyer; a second
    // tap gets the same one), then it is paid like any offer, in the same dialog.
    const reply = await c.money({ type: "claim_offer", conv: conv.id, broadcast: Number(target.dataset.broadcast) });
    const order = reply.view;
    if (order.state !== "OFFERED") {
      say(t("claimedBefore"));
      return;
    }
    await dialogAction("pay", { client: c, conv, card: { id: order.order_id, view: order }, host, listing: LISTING, say });
    return;
  }
  if (action === "image") {
    await modal(host, {
      title: t("sendPicture"), text: t("sendPictureText"),
      fields: [{ name: "url", label: t("pictureAddress"), type: "url", placeholder: "https://…" }], submit: t("send"),
      onSubmit: async ({ url }) => {
        if (!/^https?:\/\/\S+$/.test(url)) throw wordsError(t("needHttps"));
        c.send(conv.id, { kind: "image", url });
        return true;
      },
    });
  } else if (action === "pay" || action === "buy-now") {
    let amount = action === "pay" ? v.amount : LISTING.price;
    const currency = action === "pay" ? v.currency : LISTING.currency;
    const balance = await wallet(c);
    const have = balance && balance[currency] !== undefined ? t("yourBalance", { amount: money(balance[currency], currency) }) : "";
    const order = action === "pay" ? card.id : undefined;
    let run = moneyCommand(c, { type: "pay", conv: conv.id, order, amount });
    const done = await modal(host, {
      title: t("payAmount", { amount: money(amount, currency) }),
      text: t("payText") + have,
      fields: [pinField()], submit: t("pay"),
      onSubmit: async (values, dialog) => {
        try {
          return await run(values);
        } catch (err) {
          // The shop changed the price while this dialog was open: show the new one, and pay
          // that (a new action, so a new key) only when the buyer presses Pay again.
          if (err.code === 6023 && err.details && Number.isInteger(err.details.amount)) {
            amount = err.details.amount;
            run = moneyCommand(c, { type: "pay", conv: conv.id, order, amount });
            dialog.setTitle(t("payAmount", { amount: money(amount, currency) }));
            throw wordsError(t("priceChangedTo", { amount: money(amount, currency) }));
          }
          throw err;
        }
      },
    });
    if (done) say(t("paidHeld"), true);
  } else if (action === "cancel") {
    const done = await modal(host, {
      title: t("cancelOfferQ"), text: t("cancelOfferText", { title: v.title }),
      submit: t("cancelOffer"), onSubmit: moneyCommand(c, { type: "cancel", conv: conv.id, order: card.id }),
    });
    if (done) say(t("offerCancelled"), true);
  } else if (action === "confirm") {
    const done = await modal(host, {
      title: t("confirmQ"), text: t("confirmText", { title: v.title, amount: money(v.amount, v.currency) }),
      submit: t("confirmReceipt"), onSubmit: moneyCommand(c, { type: "confirm", conv: conv.id, order: card.id }),
    });
    if (done) say(t("thanksComplete"), true);
  } else if (action === "extend") {
    await modal(host, {
      title: t("moreTimeQ"), text: t("moreTimeText"),
      submit: t("addTime"), onSubmit: moneyCommand(c, { type: "extend", conv: conv.id, order: card.id }),
    });
  } else if (action === "refund") {
    await modal(host, {
      title: t("refundTitle"), text: t("refundText"),
      fields: [
        { name: "amount", label: t("refundAmountLabel", { currency: v.currency }), inputmode: "decimal", value: (v.amount / 100).toFixed(2) },
        { name: "reason", label: t("whatWrong"), type: "textarea", maxlength: 500 },
      ],
      submit: t("sendRequest"),
      onSubmit: moneyCommand(c, { type: "refund", conv: conv.id, order: card.id, build: (vals) => {
        const amount = parseMoney(vals.amount, v.currency);
        if (!amount) throw wordsError(t("enterRefundAmount"));
        if (!vals.reason.trim()) throw wordsError(t("sayWhatWrong"));
        return { amount, reason: vals.reason.trim() };
      } }),
    });
  } else if (action === "dispute") {
    await modal(host, {
      title: t("disputeTitle"), text: t("disputeText"),
      fields: [{ name: "reason", label: t("why"), type: "textarea", maxlength: 500 }], submit: t("askPlatform"),
      onSubmit: moneyCommand(c, { type: "dispute", conv: conv.id, order: card.id, build: (vals) => {
        if (!vals.reason.trim()) throw wordsError(t("sayWhyPlatform"));
        return { reason: vals.reason.trim() };
      } }),
    });
  } else if (action === "transfer") {
    const currency = LISTING ? LISTING.currency : "CNY";
    await modal(host, {
      title: t("transferTitle"), text: t("transferText"),
      fields: [{ name: "amount", label: t("amountLabel", { currency }), inputmode: "decimal" }, pinField()], submit: t("sendMoney"),
      onSubmit: moneyCommand(c, { type: "transfer", conv: conv.id, currency, build: (vals) => {
        const amount = parseMoney(vals.amount, currency);
        if (!amount) throw wordsError(t("enterAmount"));
        return { amount };
      } }),
    });
  } else if (isAfterSaleAction(action)) {
    await afterSaleDialog(action, { client: c, conv, card, host, say });
  } else if (action.startsWith("rate-")) {
    if (await rateDialog(action, { client: c, conv, card, host })) say(t("rateThanks"), true);
  } else if (action === "transfer-accept" || action === "transfer-decline") {
    await moneyCommand(c, { type: "transfer_answer", conv: conv.id, transfer: card.id, accept: action === "transfer-accept" })({});
  }
}
