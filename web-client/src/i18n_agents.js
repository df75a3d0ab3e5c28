// The words of agents' display names and of sending a listing card, in both languages
// ([en, zh-CN]); merged into the catalogue by i18n.js.
export const AGENT_ENTRIES = {
  agentAnswering: ["{agent} is answering you", "{agent} 正在为您服务"],
  nowAnswering: ["{agent} of the shop's team is now answering you.", "已由店铺客服 {agent} 为您服务。"],
  sendListing: ["Send a listing", "发送商品"],
  sendListingTitle: ["Send a listing card", "发送商品卡片"],
  sendListingHint: ["Pick one of the shop's listings from its conversations, or enter one.", "从本店会话中的商品里选择，或手动填写。"],
  listingPick: ["Listing", "商品"],
  listingPickNone: ["Enter one below", "在下方填写"],
  listingId: ["Listing id", "商品编号"],
  listingTitle: ["Title", "标题"],
  listingPrice: ["Price (yuan)", "价格（元）"],
  listingUrl: ["Page address (https)", "商品页地址（https）"],
  listingImage: ["Picture address (https, optional)", "图片地址（https，可选）"],
  listingSend: ["Send card", "发送卡片"],
  listingBadPrice: ["Enter a price above zero.", "请输入大于零的价格。"],
  listingMissing: ["Enter the listing's id and title.", "请填写商品编号和标题。"],
};
