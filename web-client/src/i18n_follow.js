// Words of following a shop and of its broadcasts, in both languages ([en, zh-CN]), merged into
// the tables of i18n.js.
export const FOLLOW_ENTRIES = {
  // --- widget
  followShop: ["Follow shop", "关注店铺"],
  followingShop: ["Following ✓", "已关注 ✓"],
  followShopLabel: ["Follow {shop} to get its new arrivals and offers in this chat", "关注 {shop}，在本对话中接收上新和优惠"],
  unfollowShopLabel: ["You follow {shop}; press to unfollow", "您已关注 {shop}，点击取消关注"],
  followAfterPay: ["Thanks for your order! Follow {shop} for new arrivals and offers.", "感谢您的购买！关注 {shop}，及时获取上新和优惠。"],
  notNow: ["Not now", "暂不"],
  followed: ["You follow {shop} now. Its news will arrive in this chat.", "已关注 {shop}，店铺消息将发送到本对话。"],
  unfollowed: ["You no longer follow {shop}.", "已取消关注 {shop}。"],
  // --- a broadcast in the chat
  broadcastTag: ["Message to followers · {shop}", "粉丝群发 · {shop}"],
  broadcastOffer: ["Follower price {price}, until {until}", "粉丝价 {price}，有效期至 {until}"],
  broadcastOfferEnded: ["Follower price {price} (ended)", "粉丝价 {price}（已结束）"],
  unsubscribe: ["Unfollow", "取消关注"],
  unsubscribeLabel: ["Unfollow {shop}: no more messages to followers", "取消关注 {shop}：不再接收粉丝消息"],
  // --- back office
  followersTitle: ["Followers", "粉丝"],
  followerCount: ["{n} followers", "{n} 位粉丝"],
  followerCount1: ["1 follower", "1 位粉丝"],
  followerBlocked: ["blocked", "已屏蔽"],
  showFollowers: ["Who follows", "查看粉丝"],
  broadcastTitle: ["Message to followers", "群发给粉丝"],
  broadcastText: ["Message", "消息内容"],
  broadcastListing: ["Attach this conversation's listing", "附上本对话的商品"],
  broadcastPrice: ["Follower price (optional)", "粉丝价（可选）"],
  broadcastHours: ["Valid for (hours)", "有效时长（小时）"],
  broadcastSend: ["Send to followers", "发送给粉丝"],
  broadcastSent: ["Sent to {n} followers: delivering…", "已提交给 {n} 位粉丝：正在发送…"],
  broadcastProgress: ["Last message: {done} of {total} delivered", "最近一次群发：已送达 {done} / {total}"],
  broadcastDone: ["Last message: delivered to {done} followers", "最近一次群发：已送达 {done} 位粉丝"],
  broadcastNeedsText: ["Please write a message or attach a listing.", "请输入消息或附上商品。"],
  err4009: ["Your shop has already sent its message to followers for now.", "店铺本期的粉丝群发次数已用完。"],
  err4009At: ["You can send the next one {when}.", "下次可发送时间：{when}。"],
};
