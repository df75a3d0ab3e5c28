// Who waits for whom in the back office: a buyer's question counts until a person from the shop
// answers. Pure (no DOM).

/** A human reply from the shop (auto-replies are flagged `auto` and do not count). */
export function isShopReply(msg) {
  return msg.role === "agent" && !msg.recalled && ["text", "image", "product"].includes(msg.kind) &&
    !(msg.body && msg.body.auto);
}
export function isBuyerQuestion(msg) {
  return msg.role === "buyer" && !msg.recalled && (msg.kind === "text" || msg.kind === "image");
}

/** When the buyer's oldest unanswered message was sent, or null if nothing waits for an answer. */
export function waitingSince(conv) {
  const msgs = conv.sorted();
  let since = null;
  for (let i = msgs.length - 1; i >= 0; i--) {
    const m = msgs[i];
    if (isShopReply(m)) break;
    if (isBuyerQuestion(m)) since = m.ts;
  }
  if (!msgs.length && conv.view.last_message && isBuyerQuestion(conv.view.last_message)) since = conv.view.last_message.ts;
  return since;
}
