// The words of the back office's conversation search and of its phone layout, in both languages
// ([en, zh-CN]); merged into the catalogue by i18n.js.
export const SEARCH_ENTRIES = {
  searchLabel: ["Search conversations (buyer, listing, message text)", "搜索会话（买家、商品、消息内容）"],
  searchPlaceholder: ["Search buyer, listing, messages…", "搜索买家、商品、聊天内容…"],
  searchResults: ["Search results", "搜索结果"],
  searching: ["Searching…", "搜索中…"],
  searchNone: ["Nothing found for “{q}”.", "没有找到“{q}”。"],
  searchMore: ["More results", "更多结果"],
  searchFailed: ["Search failed: {words}", "搜索失败：{words}"],
  matchBuyer: ["buyer", "买家"],
  matchListing: ["listing", "商品"],
  backToInbox: ["Back to the inbox", "返回会话列表"],
};
