// The back office's "Send a listing": an agent shares another listing card (a `product`
// message) into the conversation, picked from the shop's listings seen in its conversations
// or typed in. The card is shown unverified (the hub strips `verified`): paying for it goes
// through the shop's offer, never a price an agent typed.
import { modal, parseMoney, wordsError } from "./ui.js";
import { t } from "./i18n.js";

const ID = /^[A-Za-z0-9_.:@-]{1,64}$/;
const HTTPS = /^https:\/\/\S{1,2040}$/;
const PICTURE = /^(https:\/\/|\/(?!\/))\S{1,2040}$/; // a stored card's picture may be on the marketplace's own host
const MAX_PICKS = 30;

/** The shop's listings as its conversations carry them (newest conversation first, one per id). */
export function shopListings(client, shop) {
  const convs = [...client.conversations.values()]
    .filter((c) => c.view.shop === shop && c.view.listing && !String(c.view.listing.id).startsWith("@"))
    .sort((a, b) => (b.view.updated_at || 0) - (a.view.updated_at || 0));
  const seen = new Map();
  for (const c of convs) {
    const l = c.view.listing;
    if (!seen.has(l.id)) seen.set(l.id, { id: l.id, title: l.title, price: l.price, currency: l.currency, image: l.image || null });
  }
  return [...seen.values()].slice(0, MAX_PICKS);
}

/** The dialog; resolves once the card is queued (sent like any message: retried, acked). */
export async function sendListingDialog({ client, conv, host }) {
  const listings = shopListings(client, conv.view.shop).filter((l) => l.id !== conv.view.listing.id);
  const byId = new Map(listings.map((l) => [l.id, l]));
  const fill = (id, form) => {
    const l = byId.get(id);
    form.elements.id.value = l ? l.id : "";
    form.elements.title.value = l ? l.title : "";
    form.elements.price.value = l ? (l.price / 100).toFixed(2) : "";
    form.elements.image.value = l && l.image && PICTURE.test(l.image) ? l.image : "";
  };
  await modal(host, {
    title: t("sendListingTitle"), text: t("sendListingHint"), submit: t("listingSend"),
    fields: [
      { name: "pick", label: t("listingPick"), type: "select", onChange: fill,
        options: [["", t("listingPickNone")], ...listings.map((l) => [l.id, l.title])] },
      { name: "id", label: t("listingId"), maxlength: 64 },
      { name: "title", label: t("listingTitle"), maxlength: 200 },
      { name: "price", label: t("listingPrice"), inputmode: "decimal", maxlength: 20 },
      { name: "image", label: t("listingImage"), type: "url", maxlength: 2048, placeholder: "https://…" },
    ],
    onSubmit: ({ pick, id, title, price, image }) => {
      const chosen = byId.get(pick);
      const currency = chosen && chosen.id === id.trim() ? chosen.currency : "CNY";
      if (!ID.test(id.trim()) || !title.trim()) throw wordsError(t("listingMissing"));
      const minor = parseMoney(price, currency);
      if (!minor) throw wordsError(t("listingBadPrice"));
      const picked = chosen && chosen.image === image.trim() && PICTURE.test(image.trim());
      if (image.trim() && !picked && !HTTPS.test(image.trim())) throw wordsError(t("needHttps"));
      const listing = { id: id.trim(), title: title.trim().slice(0, 200), price: minor, currency };
      if (image.trim()) listing.image = image.trim();
      client.send(conv.id, { kind: "product", listing });
      return true;
    },
  });
}
