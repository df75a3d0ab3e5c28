// Following the shop from the widget: the button on the product card, and the offer to
// follow once the buyer has paid. The widget owns the state; this module reads and sets
// `state.following` / `state.followOfferDismissed` and asks the widget to render.
import { t } from "./i18n.js";

const PAID_STATES = ["HELD", "SHIPPED", "REFUND_REQUESTED", "REFUND_REFUSED", "RELEASED", "AFTER_SALE_REQUESTED",
  "AFTER_SALE_REFUSED", "AFTER_SALE_DISPUTED", "AFTER_SALE_REFUNDED", "AFTER_SALE_CLOSED", "AFTER_SALE_RESOLVED"];

/**
 * @param {{state: object, shop: string, shopName: string, render: () => void,
 *          say: (words: string, ok?: boolean) => void}} widget
 */
export function followUi({ state, shop, shopName, render, say }) {
  /** Ask the hub whether this buyer follows the shop (after each connection). */
  async function refresh(client) {
    try {
      const reply = await client.request({ type: "follow_state", shop });
      if (state.client !== client) return;
      state.following = !!reply.following;
      render();
    } catch {
      // Unknown until the next connection: the button stays hidden.
    }
  }

  function draw(panel, conv) {
    const known = state.following !== null && state.client && state.client.status === "online";
    for (const btn of panel.querySelectorAll(".follow-btn")) {
      btn.hidden = !known;
      btn.textContent = t(state.following ? "followingShop" : "followShop");
      btn.dataset.action = state.following ? "unfollow" : "follow";
      btn.dataset.shop = shop;
      btn.setAttribute("aria-pressed", state.following ? "true" : "false");
      btn.title = t(state.following ? "unfollowShopLabel" : "followShopLabel", { shop: shopName });
    }
    const paid = !!conv && [...conv.cards.values()].some((card) => PAID_STATES.includes(card.state));
    const offer = panel.querySelector(".follow-offer");
    if (offer) offer.hidden = !(known && paid && state.following === false && !state.followOfferDismissed);
  }

  const ACTIONS = new Set(["follow", "unfollow", "follow-not-now"]);

  /** Handle a follow button's action; false when the action is not one of these. */
  async function act(action, target) {
    if (!ACTIONS.has(action)) return false;
    if (action === "follow-not-now") {
      state.followOfferDismissed = true;
      return true;
    }
    const targetShop = target.dataset.shop || shop;
    const frame = action === "follow"
      ? { type: "follow", shop: targetShop,
        ...(state.conv && state.conv.view.shop === targetShop ? { conv: state.conv.id } : {}) }
      : { type: "unfollow", shop: targetShop };
    const reply = await state.client.request(frame);
    if (targetShop === shop) state.following = !!reply.following;
    say(t(reply.following ? "followed" : "unfollowed", { shop: targetShop === shop ? shopName : targetShop }), true);
    return true;
  }

  return { refresh, draw, act };
}
