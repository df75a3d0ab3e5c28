// The back office's dialogs: a picture by its address, and the shop's money actions on payment
// cards (change the price, ship, answer a refund, dispute, cancel an offer, answer a transfer).
// Each money action makes its idempotency key once and reuses it on every retry.
import { money, parseMoney, modal, wordsError } from "./ui.js";
import { randomId } from "./client.js";

function moneyCommand(client, frame) {
  const key = randomId(frame.type).slice(0, 40);
  return (extra = {}) => client.money({ ...frame, ...extra, key });
}

/** Run the dialog behind `action` in `conv` (`card`: the payment card its button belongs to). */
export async function dialogAction(action, { client, conv, card, host }) {
  if (action === "image") {
    await modal(host, {
      title: "Send a picture", fields: [{ name: "url", label: "Picture address", type: "url", placeholder: "https://…" }],
      submit: "Send", onSubmit: async ({ url }) => {
        if (!/^https?:\/\/\S+$/.test(url)) throw wordsError("Please paste an address that starts with https://");
        client.send(conv.id, { kind: "image", url });
        return true;
      },
    });
  } else if (action === "reprice") {
    const run = moneyCommand(client, { type: "offer", conv: conv.id, order: card.id, quantity: card.view.quantity });
    await modal(host, {
      title: "Change the price", fields: [{ name: "price", label: `Unit price (${card.view.currency})`, inputmode: "decimal",
        value: (card.view.unit_price / 100).toFixed(2) }],
      submit: "Update offer", onSubmit: ({ price }) => {
        const unit = parseMoney(price, card.view.currency);
        if (!unit) throw wordsError("Please enter a price.");
        return run({ price: unit });
      },
    });
  } else if (action === "ship") {
    const run = moneyCommand(client, { type: "ship", conv: conv.id, order: card.id });
    await modal(host, {
      title: "Mark as shipped", text: "The buyer's auto-confirm countdown starts now.",
      fields: [{ name: "tracking", label: "Carrier and tracking number", maxlength: 200, placeholder: "SF Express SF1234567890" }],
      submit: "Mark shipped", onSubmit: ({ tracking }) => {
        if (!tracking.trim()) throw wordsError("Please enter the carrier and tracking number.");
        return run({ tracking: tracking.trim() });
      },
    });
  } else if (action === "refund-accept" || action === "refund-refuse") {
    const accept = action === "refund-accept";
    const run = moneyCommand(client, { type: "refund_answer", conv: conv.id, order: card.id, accept });
    await modal(host, {
      title: accept ? "Accept the refund?" : "Refuse the refund?",
      text: accept ? `${money(card.view.refund_amount, card.view.currency)} goes back to the buyer.` : "The buyer may then ask the platform to decide.",
      submit: accept ? "Accept refund" : "Refuse", onSubmit: () => run(),
    });
  } else if (action === "dispute") {
    const run = moneyCommand(client, { type: "dispute", conv: conv.id, order: card.id });
    await modal(host, {
      title: "Ask the platform to decide", fields: [{ name: "reason", label: "Why?", type: "textarea", maxlength: 500 }],
      submit: "Ask the platform", onSubmit: ({ reason }) => {
        if (!reason.trim()) throw wordsError("Please say why the platform should decide.");
        return run({ reason: reason.trim() });
      },
    });
  } else if (action === "cancel") {
    const run = moneyCommand(client, { type: "cancel", conv: conv.id, order: card.id });
    await modal(host, {
      title: "Cancel this offer?", text: "The buyer can no longer pay it; you can make a new offer.",
      submit: "Cancel offer", onSubmit: () => run(),
    });
  } else if (action === "transfer-accept" || action === "transfer-decline") {
    await moneyCommand(client, { type: "transfer_answer", conv: conv.id, transfer: card.id, accept: action === "transfer-accept" })();
  }
}
