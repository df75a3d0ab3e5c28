// The back office's dialogs: a picture by its address, and the shop's money actions on payment
// cards (change the price, ship, answer a refund or an after-sale claim, dispute, cancel an offer,
// answer a transfer).
// Each money action makes its idempotency key once and reuses it on every retry.
import { money, parseMoney, modal, wordsError } from "./ui.js";
import { randomId } from "./client.js";
import { t } from "./i18n.js";
import { sendListingDialog } from "./backoffice_listing.js";
import { isAfterSaleAction, afterSaleDialog } from "./after_sale.js";

function moneyCommand(client, frame) {
  const key = randomId(frame.type).slice(0, 40);
  return (extra = {}) => client.money({ ...frame, ...extra, key });
}

/** Run the dialog behind `action` in `conv` (`card`: the payment card its button belongs to). */
export async function dialogAction(action, { client, conv, card, host }) {
  if (action === "send-listing") {
    await sendListingDialog({ client, conv, host });
  } else if (action === "image") {
    await modal(host, {
      title: t("sendPicture"), fields: [{ name: "url", label: t("pictureAddress"), type: "url", placeholder: "https://…" }],
      submit: t("send"), onSubmit: async ({ url }) => {
        if (!/^https?:\/\/\S+$/.test(url)) throw wordsError(t("needHttps"));
        client.send(conv.id, { kind: "image", url });
        return true;
      },
    });
  } else if (action === "reprice") {
    const run = moneyCommand(client, { type: "offer", conv: conv.id, order: card.id, quantity: card.view.quantity });
    await modal(host, {
      title: t("changePriceTitle"), fields: [{ name: "price", label: t("unitPriceLabel", { currency: card.view.currency }), inputmode: "decimal",
        value: (card.view.unit_price / 100).toFixed(2) }],
      submit: t("updateOffer"), onSubmit: ({ price }) => {
        const unit = parseMoney(price, card.view.currency);
        if (!unit) throw wordsError(t("enterPrice"));
        return run({ price: unit });
      },
    });
  } else if (action === "ship") {
    const run = moneyCommand(client, { type: "ship", conv: conv.id, order: card.id });
    await modal(host, {
      title: t("shipTitle"), text: t("shipText"),
      fields: [{ name: "tracking", label: t("trackingLabel"), maxlength: 200, placeholder: t("trackingPlaceholder") }],
      submit: t("markShipped"), onSubmit: ({ tracking }) => {
        if (!tracking.trim()) throw wordsError(t("enterTracking"));
        return run({ tracking: tracking.trim() });
      },
    });
  } else if (action === "refund-accept" || action === "refund-refuse") {
    const accept = action === "refund-accept";
    const run = moneyCommand(client, { type: "refund_answer", conv: conv.id, order: card.id, accept });
    await modal(host, {
      title: t(accept ? "acceptRefundQ" : "refuseRefundQ"),
      text: accept ? t("refundGoesBack", { amount: money(card.view.refund_amount, card.view.currency) }) : t("buyerMayAsk"),
      submit: t(accept ? "acceptRefund" : "refuse"), onSubmit: () => run(),
    });
  } else if (isAfterSaleAction(action)) {
    await afterSaleDialog(action, { client, conv, card, host });
  } else if (action === "dispute") {
    const run = moneyCommand(client, { type: "dispute", conv: conv.id, order: card.id });
    await modal(host, {
      title: t("disputeTitle"), fields: [{ name: "reason", label: t("why"), type: "textarea", maxlength: 500 }],
      submit: t("askPlatform"), onSubmit: ({ reason }) => {
        if (!reason.trim()) throw wordsError(t("sayWhyPlatform"));
        return run({ reason: reason.trim() });
      },
    });
  } else if (action === "cancel") {
    const run = moneyCommand(client, { type: "cancel", conv: conv.id, order: card.id });
    await modal(host, {
      title: t("cancelOfferQ"), text: t("agentCancelText"),
      submit: t("cancelOffer"), onSubmit: () => run(),
    });
  } else if (action === "transfer-accept" || action === "transfer-decline") {
    await moneyCommand(client, { type: "transfer_answer", conv: conv.id, transfer: card.id, accept: action === "transfer-accept" })();
  }
}
