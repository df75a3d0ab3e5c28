// The widget's dialogs: a picture by its address, and the money actions on payment cards (pay,
// cancel, confirm, more time, refund, dispute, transfers). Each money action makes its idempotency
// key once and reuses it on every retry of that action.
import { money, parseMoney, modal, wordsError } from "./ui.js";
import { randomId } from "./client.js";

async function wallet(client) {
  try {
    const w = await client.request({ type: "wallet" });
    return (w.balances["user:" + client.me.user] || {});
  } catch {
    return null;
  }
}

const pinField = { name: "pin", label: "Payment PIN (6 digits)", type: "password", inputmode: "numeric",
  maxlength: 6, autocomplete: "off" };

/** Run a money command; the key is made once per user action and reused on every retry. */
function moneyCommand(client, frame) {
  const key = randomId(frame.type).slice(0, 40);
  return async (values) => {
    const extra = typeof frame.build === "function" ? frame.build(values) : {};
    const { build, ...rest } = frame;
    if (values.pin !== undefined && !/^[0-9]{6}$/.test(values.pin)) throw wordsError("The payment PIN must be 6 digits.");
    const reply = await client.money({ ...rest, ...extra, key, ...(values.pin ? { pin: values.pin } : {}) });
    return reply;
  };
}

/**
 * Run the dialog behind `action` (a button's data-action) in `conv`; `card` is the payment card
 * the button belongs to, `say(words, ok)` shows the outcome under the messages.
 */
export async function dialogAction(action, { client: c, conv, card, host, listing: LISTING, say }) {
  const v = card ? card.view : {};
  if (action === "image") {
    await modal(host, {
      title: "Send a picture", text: "Paste the address of a picture (for example from your photo storage).",
      fields: [{ name: "url", label: "Picture address", type: "url", placeholder: "https://…" }], submit: "Send",
      onSubmit: async ({ url }) => {
        if (!/^https?:\/\/\S+$/.test(url)) throw wordsError("Please paste an address that starts with https://");
        c.send(conv.id, { kind: "image", url });
        return true;
      },
    });
  } else if (action === "pay" || action === "buy-now") {
    let amount = action === "pay" ? v.amount : LISTING.price;
    const currency = action === "pay" ? v.currency : LISTING.currency;
    const balance = await wallet(c);
    const have = balance && balance[currency] !== undefined ? ` Your balance: ${money(balance[currency], currency)}.` : "";
    const order = action === "pay" ? card.id : undefined;
    let run = moneyCommand(c, { type: "pay", conv: conv.id, order, amount });
    const done = await modal(host, {
      title: `Pay ${money(amount, currency)}`,
      text: "The money is held safely and only goes to the shop when you confirm that you received the item." + have,
      fields: [pinField], submit: "Pay",
      onSubmit: async (values, dialog) => {
        try {
          return await run(values);
        } catch (err) {
          // The shop changed the price while this dialog was open: show the new one, and pay
          // that (a new action, so a new key) only when the buyer presses Pay again.
          if (err.code === 6023 && err.details && Number.isInteger(err.details.amount)) {
            amount = err.details.amount;
            run = moneyCommand(c, { type: "pay", conv: conv.id, order, amount });
            dialog.setTitle(`Pay ${money(amount, currency)}`);
            throw wordsError(`The seller changed the price to ${money(amount, currency)}. Press Pay to pay the new price.`);
          }
          throw err;
        }
      },
    });
    if (done) say("Paid. The money is held until you confirm receipt.", true);
  } else if (action === "cancel") {
    const done = await modal(host, {
      title: "Cancel this offer?", text: `Nobody has paid “${v.title}” yet. The shop can make a new offer later.`,
      submit: "Cancel offer", onSubmit: moneyCommand(c, { type: "cancel", conv: conv.id, order: card.id }),
    });
    if (done) say("The offer was cancelled.", true);
  } else if (action === "confirm") {
    const done = await modal(host, {
      title: "Confirm receipt?", text: `Only confirm if you received “${v.title}” as described. ${money(v.amount, v.currency)} will be paid to the shop.`,
      submit: "Confirm receipt", onSubmit: moneyCommand(c, { type: "confirm", conv: conv.id, order: card.id }),
    });
    if (done) say("Thank you! The order is complete.", true);
  } else if (action === "extend") {
    await modal(host, {
      title: "More time to confirm?", text: "You can add time once, for example when a parcel is late.",
      submit: "Add time", onSubmit: moneyCommand(c, { type: "extend", conv: conv.id, order: card.id }),
    });
  } else if (action === "refund") {
    await modal(host, {
      title: "Request a refund", text: "The automatic completion pauses while the shop answers.",
      fields: [
        { name: "amount", label: `Amount to get back (${v.currency})`, inputmode: "decimal", value: (v.amount / 100).toFixed(2) },
        { name: "reason", label: "What went wrong?", type: "textarea", maxlength: 500 },
      ],
      submit: "Send request",
      onSubmit: moneyCommand(c, { type: "refund", conv: conv.id, order: card.id, build: (vals) => {
        const amount = parseMoney(vals.amount, v.currency);
        if (!amount) throw wordsError("Please enter the amount you want back.");
        if (!vals.reason.trim()) throw wordsError("Please say what went wrong.");
        return { amount, reason: vals.reason.trim() };
      } }),
    });
  } else if (action === "dispute") {
    await modal(host, {
      title: "Ask the platform to decide", text: "An arbiter of the marketplace looks at the conversation and decides.",
      fields: [{ name: "reason", label: "Why?", type: "textarea", maxlength: 500 }], submit: "Ask the platform",
      onSubmit: moneyCommand(c, { type: "dispute", conv: conv.id, order: card.id, build: (vals) => {
        if (!vals.reason.trim()) throw wordsError("Please say why the platform should decide.");
        return { reason: vals.reason.trim() };
      } }),
    });
  } else if (action === "transfer") {
    const currency = LISTING ? LISTING.currency : "CNY";
    await modal(host, {
      title: "Send money to the shop", text: "The shop has to accept it; if it does not within the time limit, the money comes back to you.",
      fields: [{ name: "amount", label: `Amount (${currency})`, inputmode: "decimal" }, pinField], submit: "Send money",
      onSubmit: moneyCommand(c, { type: "transfer", conv: conv.id, currency, build: (vals) => {
        const amount = parseMoney(vals.amount, currency);
        if (!amount) throw wordsError("Please enter an amount.");
        return { amount };
      } }),
    });
  } else if (action === "transfer-accept" || action === "transfer-decline") {
    await moneyCommand(c, { type: "transfer_answer", conv: conv.id, transfer: card.id, accept: action === "transfer-accept" })({});
  }
}
