// Every sentence the widget and the back office show, in Simplified Chinese and English, and
// the locale's way of writing money, times, days and durations.
//
// Each entry holds both languages side by side ([en, zh-CN]) so that a sentence cannot be added
// in one language and forgotten in the other; `TABLES` gives the per-language tables. `{name}` is
// filled from the arguments of `t(key, vars)`. Pure module (no DOM): tested under node.
import { CREDIT_ENTRIES } from "./i18n_credit.js";
import { INBOX_ENTRIES } from "./i18n_inbox.js";
import { AGENT_ENTRIES } from "./i18n_agents.js";
import { FOLLOW_ENTRIES } from "./i18n_follow.js";
import { PICTURE_ENTRIES } from "./i18n_pictures.js";
import { SEARCH_ENTRIES } from "./i18n_search.js";
import { ARBITER_ENTRIES } from "./i18n_arbiter.js";
import { AFTER_SALE_ENTRIES } from "./i18n_after_sale.js";

const ENTRIES = {
  // --- widget: launcher, header, composer
  frameTitle: ["Chat with the shop", "联系卖家"],
  chatWith: ["Chat with {shop}", "与 {shop} 聊天"],
  launcherLabel: ["Chat with {shop}: {status}", "与 {shop} 聊天：{status}"],
  launcherUnread: [", {n} unread", "，{n} 条未读"],
  stOnline: ["online", "在线"],
  stAway: ["away", "暂时离开"],
  stUnknown: ["status unknown", "状态未知"],
  stOffline: ["offline", "离线"],
  closeChat: ["Close the chat", "关闭聊天"],
  buyNow: ["Buy now", "立即购买"],
  writeMessage: ["Write a message…", "输入消息…"],
  writeOnceConnected: ["You can write once the chat is connected", "连接后即可输入"],
  signInToWrite: ["Sign in to write a message", "登录后即可发消息"],
  message: ["Message", "消息"],
  messages: ["Messages", "消息"],
  sendPictureByAddress: ["Send a picture by its address", "通过图片地址发送图片"],
  picture: ["Picture", "图片"],
  sendMoney: ["Send money", "转账"],
  send: ["Send", "发送"],
  isTyping: ["{name} is typing…", "{name} 正在输入…"],
  usuallyReplies: ["Usually replies in {d}", "通常在 {d} 内回复"],
  // --- widget: presence, banner, empty list
  presOnline: ["Online", "在线"],
  presAway: ["Away: replies may take a while", "暂时离开：回复可能稍慢"],
  presUnknownOffline: ["Status unknown while you are offline", "您已离线，卖家状态未知"],
  presUnknownReconnecting: ["Status unknown while reconnecting", "正在重新连接，卖家状态未知"],
  presUnknown: ["Status unknown", "状态未知"],
  presLastSeen: ["Offline · last seen {ago}", "离线 · 最后在线 {ago}"],
  presOffline: ["Offline: leave a message", "离线：请留言"],
  signInToChat: ["Sign in on this site to chat with the shop.", "请先登录本站，再与卖家聊天。"],
  kept: ["Your messages are kept and will be sent.", "您的消息已保存，稍后会发出。"],
  connecting: ["Connecting…", "正在连接…"],
  reconnectingToken: ["Reconnecting… signing in to the chat failed, trying again. {kept}", "正在重新连接… 登录聊天失败，正在重试。{kept}"],
  reconnectingLost: ["Connection lost. Reconnecting… {kept}", "连接已断开，正在重新连接… {kept}"],
  waitingNetwork: ["Waiting for network… you are offline. {kept}", "等待网络… 您已离线。{kept}"],
  refused4001: ["The chat could not sign you in: your sign-in was refused. Please reload the page or sign in again.", "聊天无法为您登录：登录被拒绝。请刷新页面或重新登录。"],
  stoppedReload: ["The chat stopped working on this page. Please reload the page.", "聊天在此页面已停止工作，请刷新页面。"],
  signedOut: ["You are signed out of the chat. Sign in on this site, then reload the page.", "您已退出聊天。请登录本站后刷新页面。"],
  emptySignIn: ["Sign in on this site to chat with {shop}. Your conversation will show here.", "请登录本站后与 {shop} 聊天，对话会显示在这里。"],
  emptyOpening: ["Opening the chat…", "正在打开聊天…"],
  emptyStopped: ["The chat cannot be used on this page right now. Reloading the page usually helps.", "聊天暂时无法在此页面使用，刷新页面通常可以解决。"],
  emptyOffline: ["You are offline. The chat opens when your network is back.", "您已离线，网络恢复后聊天会自动打开。"],
  emptyToken: ["This site could not sign you in to the chat yet. We keep trying; reloading the page may help.", "本站暂时无法为您登录聊天，我们会继续重试；刷新页面也许有帮助。"],
  emptyConnecting: ["Connecting to the chat…", "正在连接聊天…"],
  signInExpired: ["Your sign-in has expired. Please reload the page.", "登录已过期，请刷新页面。"],
  newMessageFrom: ["New message from {shop}", "{shop} 发来新消息"],
  // --- message list
  loadingOlder: ["Loading earlier messages…", "正在加载更早的消息…"],
  scrollForOlder: ["Scroll up for earlier messages", "向上滚动查看更早的消息"],
  startOfConversation: ["Start of the conversation", "对话开始"],
  newBelow: ["New messages ↓", "新消息 ↓"],
  you: ["You", "您"],
  theBuyer: ["The buyer", "买家"],
  theShop: ["The shop", "卖家"],
  recalledBy: ["{who} recalled a message", "{who}撤回了一条消息"],
  needsNewer: ["This message needs a newer version of the chat.", "此消息需要更新版本的聊天才能显示。"],
  autoReply: ["Automatic reply", "自动回复"],
  recallThis: ["Recall this message", "撤回这条消息"],
  recall: ["Recall", "撤回"],
  teamAnswering: ["Another member of the shop's team is now answering you.", "已由店铺的另一位客服为您服务。"],
  tookConv: ["{agent} took this conversation.", "{agent} 接手了此对话。"],
  handedConv: ["{by} handed this conversation over to {agent}.", "{by} 将此对话转交给 {agent}。"],
  tickRead: ["Read", "已读"],
  tickDelivered: ["Delivered", "已送达"],
  tickSent: ["Sent", "已发送"],
  sending: ["Sending…", "发送中…"],
  notSent: ["Not sent: ", "未发送："],
  retry: ["Retry", "重试"],
  delete: ["Delete", "删除"],
  today: ["Today", "今天"],
  yesterday: ["Yesterday", "昨天"],
  justNow: ["just now", "刚刚"],
  ago: ["{d} ago", "{d}前"],
  // --- payment cards
  osOffer: ["Offer", "报价"], osOfferNote: ["waiting for payment", "等待付款"],
  osCancelled: ["Cancelled", "已取消"], osCancelledNote: ["this offer was withdrawn", "此报价已撤回"],
  osHeld: ["Paid", "已付款"], osHeldNote: ["the money is held safely until you confirm receipt", "款项由平台担保，确认收货后才付给卖家"],
  osShipped: ["Shipped", "已发货"], osShippedNote: ["confirm receipt when it arrives", "收到后请确认收货"],
  osRefundRequested: ["Refund requested", "已申请退款"], osRefundRequestedNote: ["waiting for the shop's answer", "等待卖家答复"],
  osRefundRefused: ["Refund refused", "退款被拒"], osRefundRefusedNote: ["you can confirm receipt or ask the platform to decide", "您可以确认收货，或请平台裁决"],
  osDisputed: ["With the platform", "平台处理中"], osDisputedNote: ["an arbiter will decide", "将由平台仲裁员裁决"],
  osReleased: ["Completed", "已完成"], osReleasedNote: ["the money was paid to the shop", "款项已付给卖家"],
  osRefunded: ["Refunded", "已退款"], osRefundedNote: ["the money went back to the buyer", "款项已退还买家"],
  osResolved: ["Resolved", "已解决"], osResolvedNote: ["settled by the platform", "由平台裁决"],
  shopOffered: ["waiting for the buyer to pay", "等待买家付款"],
  shopHeld: ["paid into escrow: ship it", "买家已付款至担保：请发货"],
  shopShipped: ["the buyer confirms receipt, or it completes automatically", "等待买家确认收货，超时自动完成"],
  shopRefundRequested: ["the buyer asks for money back: answer it", "买家申请退款：请处理"],
  shopRefundRefused: ["the buyer may confirm or ask the platform", "买家可确认收货或请平台裁决"],
  dlBuyerOffered: ["Pay within {d}", "请在 {d} 内付款"],
  dlBuyerHeld: ["The shop ships within {d}", "卖家将在 {d} 内发货"],
  dlBuyerRefund: ["The shop answers your refund request within {d}", "卖家将在 {d} 内答复退款申请"],
  dlDisputed: ["The platform decides within {d}", "平台将在 {d} 内裁决"],
  dlAgentOffered: ["The buyer pays within {d}", "买家需在 {d} 内付款"],
  dlAgentHeld: ["Ship within {d}", "请在 {d} 内发货"],
  dlAgentRefund: ["Answer the refund request within {d}", "请在 {d} 内处理退款申请"],
  autoCompletes: ["Completes automatically in {d}", "{d}后自动完成"],
  expiresIn: ["Expires in {d}", "{d}后过期"],
  dueNow: ["Due now: updating…", "已到期：正在更新…"],
  tsPending: ["Waiting to be accepted", "等待接收"],
  tsAccepted: ["Accepted", "已接收"],
  tsDeclined: ["Declined, returned to the sender", "已拒收，退回付款人"],
  tsExpired: ["Expired, returned to the sender", "已过期，退回付款人"],
  stepSent: ["Sent", "已转账"],
  stepPriceChanged: ["Price changed", "改价"],
  stepOffered: ["Offered", "报价"],
  stepMoreTime: ["More time to confirm", "延长确认收货时间"],
  stepTracking: ["tracking {note}", "运单 {note}"],
  stepRefundAsked: ["Refund asked", "申请退款"],
  stepToPlatform: ["Sent to the platform", "提交平台裁决"],
  historyOrder: ["History of this order", "订单记录"],
  historyTransfer: ["History of this transfer", "转账记录"],
  transferToYou: ["Transfer to you", "转给您的款项"],
  transferSent: ["Transfer sent", "已发出的转账"],
  accept: ["Accept", "接收"],
  decline: ["Decline", "拒收"],
  order: ["Order", "订单"],
  trackingLine: ["Tracking: {note}", "运单：{note}"],
  refundAskedLine: ["Refund asked: {amount}", "申请退款：{amount}"],
  disputeReasonLine: ["Reason given to the platform: “{reason}”", "提交平台的理由：“{reason}”"],
  completedAuto: ["Completed automatically.", "已自动完成。"],
  refundedAmount: ["Refunded {amount}", "已退款 {amount}"],
  payAmount: ["Pay {amount}", "支付 {amount}"],
  confirmReceipt: ["Confirm receipt", "确认收货"],
  moreTime: ["More time", "延长收货"],
  requestRefund: ["Request refund", "申请退款"],
  askPlatform: ["Ask the platform", "请平台裁决"],
  changePrice: ["Change price", "改价"],
  markShipped: ["Mark shipped", "标记已发货"],
  acceptRefund: ["Accept refund", "同意退款"],
  refuse: ["Refuse", "拒绝"],
  cancelOffer: ["Cancel offer", "取消报价"],
  pvRecalled: ["Message recalled", "消息已撤回"],
  pvPicture: ["[Picture]", "[图片]"],
  pvProduct: ["[Product]", "[商品]"],
  pvTransfer: ["Transfer", "转账"],
  pvOrder: ["Order", "订单"],
  pvMessage: ["[Message]", "[消息]"],
  // --- dialogs
  ok: ["OK", "确定"],
  cancel: ["Cancel", "取消"],
  pinLabel: ["Payment PIN (6 digits)", "支付密码（6 位数字）"],
  sendPicture: ["Send a picture", "发送图片"],
  sendPictureText: ["Paste the address of a picture (for example from your photo storage).", "粘贴图片地址（例如来自您的相册存储）。"],
  pictureAddress: ["Picture address", "图片地址"],
  needHttps: ["Please paste an address that starts with https://", "请粘贴以 https:// 开头的地址"],
  yourBalance: [" Your balance: {amount}.", "您的余额：{amount}。"],
  payText: ["The money is held safely and only goes to the shop when you confirm that you received the item.", "款项由平台担保，您确认收到商品后才会付给卖家。"],
  pay: ["Pay", "支付"],
  priceChangedTo: ["The seller changed the price to {amount}. Press Pay to pay the new price.", "卖家已改价为 {amount}。请按“支付”支付新价格。"],
  paidHeld: ["Paid. The money is held until you confirm receipt.", "已付款。款项由平台担保，直到您确认收货。"],
  cancelOfferQ: ["Cancel this offer?", "取消此报价？"],
  cancelOfferText: ["Nobody has paid “{title}” yet. The shop can make a new offer later.", "“{title}”尚未付款。卖家之后可以重新报价。"],
  offerCancelled: ["The offer was cancelled.", "报价已取消。"],
  confirmQ: ["Confirm receipt?", "确认收货？"],
  confirmText: ["Only confirm if you received “{title}” as described. {amount} will be paid to the shop.", "请在收到与描述相符的“{title}”后再确认。{amount} 将付给卖家。"],
  thanksComplete: ["Thank you! The order is complete.", "谢谢！订单已完成。"],
  moreTimeQ: ["More time to confirm?", "延长确认收货时间？"],
  moreTimeText: ["You can add time once, for example when a parcel is late.", "可延长一次，例如包裹延误时。"],
  addTime: ["Add time", "延长时间"],
  refundTitle: ["Request a refund", "申请退款"],
  refundText: ["The automatic completion pauses while the shop answers.", "卖家答复期间，自动完成会暂停。"],
  refundAmountLabel: ["Amount to get back ({currency})", "退款金额（{currency}）"],
  whatWrong: ["What went wrong?", "出了什么问题？"],
  sendRequest: ["Send request", "提交申请"],
  enterRefundAmount: ["Please enter the amount you want back.", "请输入退款金额。"],
  sayWhatWrong: ["Please say what went wrong.", "请说明出了什么问题。"],
  disputeTitle: ["Ask the platform to decide", "请平台裁决"],
  disputeText: ["An arbiter of the marketplace looks at the conversation and decides.", "平台仲裁员会查看对话并作出裁决。"],
  why: ["Why?", "原因？"],
  sayWhyPlatform: ["Please say why the platform should decide.", "请说明需要平台裁决的原因。"],
  transferTitle: ["Send money to the shop", "转账给卖家"],
  transferText: ["The shop has to accept it; if it does not within the time limit, the money comes back to you.", "需要卖家接收；若卖家未在时限内接收，款项将退回给您。"],
  amountLabel: ["Amount ({currency})", "金额（{currency}）"],
  enterAmount: ["Please enter an amount.", "请输入金额。"],
  changePriceTitle: ["Change the price", "修改价格"],
  unitPriceLabel: ["Unit price ({currency})", "单价（{currency}）"],
  updateOffer: ["Update offer", "更新报价"],
  enterPrice: ["Please enter a price.", "请输入价格。"],
  shipTitle: ["Mark as shipped", "标记为已发货"],
  shipText: ["The buyer's auto-confirm countdown starts now.", "买家的自动确认收货倒计时从现在开始。"],
  trackingLabel: ["Carrier and tracking number", "快递公司和运单号"],
  trackingPlaceholder: ["SF Express SF1234567890", "顺丰速运 SF1234567890"],
  enterTracking: ["Please enter the carrier and tracking number.", "请输入快递公司和运单号。"],
  acceptRefundQ: ["Accept the refund?", "同意退款？"],
  refuseRefundQ: ["Refuse the refund?", "拒绝退款？"],
  refundGoesBack: ["{amount} goes back to the buyer.", "{amount} 将退还给买家。"],
  buyerMayAsk: ["The buyer may then ask the platform to decide.", "买家随后可以请平台裁决。"],
  agentCancelText: ["The buyer can no longer pay it; you can make a new offer.", "买家将无法再支付此报价；您可以重新报价。"],
  // --- back office
  autoReplyLabel: ["Auto-reply text while away", "离开时的自动回复内容"],
  autoReplyPlaceholder: ["Auto-reply while away", "离开时自动回复"],
  autoReplyDefault: ["Thanks for your message! We are away right now and will answer as soon as we are back.", "感谢您的留言！我们暂时不在，回来后会尽快回复您。"],
  away: ["Away", "离开"],
  backOffice: ["Back office", "卖家后台"],
  saveQuick: ["+ Save reply as quick reply", "+ 存为快捷回复"],
  aboutListing: ["about “{title}” · ", "咨询“{title}” · "],
  assignedTo: ["assigned to {agent}", "由 {agent} 负责"],
  language: ["Language", "语言"],
  conversations: ["Conversations", "对话"],
  filterPlaceholder: ["Filter by buyer or product", "按买家或商品筛选"],
  filterLabel: ["Filter conversations", "筛选对话"],
  inbox: ["Inbox", "收件箱"],
  quickReplies: ["Quick replies", "快捷回复"],
  replyPlaceholder: ["Reply… (Enter to send, Shift+Enter for a new line)", "回复…（Enter 发送，Shift+Enter 换行）"],
  reply: ["Reply", "回复"],
  orderAndEscrow: ["Order and escrow", "订单与担保"],
  chooseConversation: ["Choose a conversation on the left.", "请在左侧选择一个对话。"],
  nUnread: ["{n} unread", "{n} 条未读"],
  waitingFor: ["waiting {d}", "已等待 {d}"],
  refundUrgent: ["Refund requested: answer it", "买家申请退款：请处理"],
  unassigned: ["unassigned", "未分配"],
  noConversations: ["No conversations yet.", "暂无对话。"],
  handOverTo: ["Hand over to", "转交给"],
  handOverToMenu: ["Hand over to…", "转交给…"],
  unitPrice: ["Unit price", "单价"],
  quantity: ["Quantity", "数量"],
  changeOpenOffer: ["Change the open offer", "修改当前报价"],
  makeOffer: ["Make an offer", "发送报价"],
  sendOffer: ["Send offer", "发送报价"],
  listing: ["Listing", "商品"],
  ordersAndEscrow: ["Orders and escrow", "订单与担保"],
  noOrderYet: ["No order yet. Agree on a price, then send an offer.", "暂无订单。谈好价格后发送报价。"],
  transfers: ["Transfers", "转账"],
  factPaid: ["paid {when}", "付款于 {when}"],
  factShipped: ["shipped {when}", "发货于 {when}"],
  factHeld: ["held in escrow: {amount}", "担保中：{amount}"],
  connected: ["● connected", "● 已连接"],
  boReconnectingToken: ["Reconnecting… (signing in failed, trying again)", "正在重新连接…（登录失败，正在重试）"],
  boReconnecting: ["Reconnecting…", "正在重新连接…"],
  boWaitingNetwork: ["Waiting for network…", "等待网络…"],
  boRefused: ["Sign-in refused: reload the page", "登录被拒绝：请刷新页面"],
  boStopped: ["Stopped: reload the page", "已停止：请刷新页面"],
  boSignedOut: ["Signed out", "已退出"],
  figuresLoading: ["Response figures loading…", "正在加载响应数据…"],
  firstResponse: ["First response ", "首次响应 "],
  responseRate: ["Response rate ", "回复率 "],
  figuresNote: [" · last 7 days, whole shop; auto-replies excluded", " · 近 7 天，全店；不含自动回复"],
  enterPriceQty: ["Please enter a price and a quantity.", "请输入价格和数量。"],
  typeReplyFirst: ["Type the reply first, then save it.", "请先输入回复内容，再保存。"],
  removedQuick: ["Removed “{text}”. ", "已删除“{text}”。"],
  undo: ["Undo", "撤销"],
  insertReply: ["Insert this reply", "插入此回复"],
  removeQuick: ["Remove quick reply: {text}", "删除快捷回复：{text}"],
  quickDefault1: ["Hello! How can I help you?", "您好！请问有什么可以帮您？"],
  quickDefault2: ["Yes, it is in stock and ships within 24 hours.", "有货，24 小时内发货。"],
  quickDefault3: ["Thank you for your order! We ship it today.", "感谢您的订单！我们今天发货。"],
  // --- durations
  durS: ["{s} s", "{s} 秒"],
  durM: ["{m} min", "{m} 分钟"],
  durHM: ["{h} h {m} min", "{h} 小时 {m} 分钟"],
  durDH: ["{d} days {h} h", "{d} 天 {h} 小时"],
  // --- errors from the hub (codes: docs/protocol.md)
  errDisconnected: ["The connection was lost. Check your network and try again.", "连接已断开，请检查网络后重试。"],
  err1001: ["The chat could not read that request. Please reload the page.", "聊天无法读取该请求，请刷新页面。"],
  err1002: ["The chat could not read that request. Please reload the page.", "聊天无法读取该请求，请刷新页面。"],
  err1003: ["This page's chat is older than the service. Please reload the page.", "此页面的聊天版本过旧，请刷新页面。"],
  err1004: ["Something in that request was not accepted. Please check it and try again.", "请求中有内容未被接受，请检查后重试。"],
  err1005: ["That is too long to send in one message. Please shorten it.", "内容太长，无法作为一条消息发送，请缩短。"],
  err1006: ["The chat could not read that request. Please reload the page.", "聊天无法读取该请求，请刷新页面。"],
  err2001: ["You are not signed in yet. Please wait a moment.", "尚未登录，请稍候。"],
  err2002: ["Your sign-in is no longer valid. Please reload the page.", "登录已失效，请刷新页面。"],
  err2003: ["Your sign-in has expired. Please reload the page.", "登录已过期，请刷新页面。"],
  err2004: ["You are already signed in to the chat.", "您已登录聊天。"],
  err3001: ["That could not be found. It may have been removed.", "找不到该内容，可能已被删除。"],
  err3002: ["You are not part of this conversation.", "您不是此对话的参与者。"],
  err3003: ["Your account cannot do that here.", "您的账号无法在此执行该操作。"],
  err3004: ["This price cannot be paid directly. Please ask the shop for an offer in the chat.", "此价格不能直接支付，请在聊天中向卖家索要报价。"],
  err4001: ["You are sending too fast. Your message will go out in a moment.", "发送太快了，您的消息稍后会发出。"],
  err4002: ["It is too late to recall that message.", "已超过撤回时限。"],
  err4003: ["You can only recall your own messages.", "只能撤回自己的消息。"],
  err4004: ["That message cannot be recalled.", "该消息无法撤回。"],
  err4005: ["That message was already sent as a different one. Please write it again.", "该消息编号已被另一条消息使用，请重新输入。"],
  err4006: ["Not sent: contact details and payments outside the platform are not allowed here. Please pay in the chat, where your money is protected.", "未发送：此处不允许留联系方式或在平台外付款。请在聊天中付款，款项受平台担保。"],
  err4007: ["Not sent: the marketplace does not allow this message.", "未发送：平台不允许发送此消息。"],
  err4008: ["Not sent: this chat is blocked.", "未发送：此对话已被屏蔽。"],
  err5001: ["The chat service had a problem. Please try again.", "聊天服务出现问题，请重试。"],
  err5002: ["Payments are not available right now.", "支付功能暂时不可用。"],
  err6000: ["That payment request was not valid.", "支付请求无效。"],
  err6001: ["Please enter a valid amount.", "请输入有效金额。"],
  err6002: ["That currency is not supported.", "不支持该币种。"],
  err6003: ["The currencies do not match.", "币种不一致。"],
  err6010: ["Your balance is too low for this payment. Please top up your wallet and try again.", "余额不足，请充值后重试。"],
  err6020: ["That order or transfer could not be found.", "找不到该订单或转账。"],
  err6021: ["This can no longer be done: the order has moved on. The card shows its current state.", "无法执行：订单状态已变化，卡片显示的是当前状态。"],
  err6022: ["Only the other party can do that.", "只有对方可以执行此操作。"],
  err6023: ["The seller changed the price. Please check the new price on the card before paying.", "卖家已改价，请在付款前查看卡片上的新价格。"],
  err6030: ["This payment was already submitted with different details. Please start again.", "此付款已用不同信息提交过，请重新开始。"],
  err6040: ["Wrong payment PIN.", "支付密码错误。"],
  err6041: ["Too many wrong PINs: payments are locked for a while for your safety.", "支付密码错误次数过多：为了您的安全，支付已暂时锁定。"],
  err6042: ["Please set a payment PIN in your wallet first.", "请先在钱包中设置支付密码。"],
  err6043: ["The payment PIN must be 6 digits.", "支付密码必须是 6 位数字。"],
  err6044: ["This payment needs your payment PIN.", "此付款需要输入支付密码。"],
  err6045: ["Payment PINs cannot be checked right now. Nothing was charged; please try again later.", "暂时无法验证支付密码，未扣款，请稍后重试。"],
  err6050: ["This is over your payment limit.", "超出您的支付限额。"],
  err6060: ["This has already been paid.", "此订单已付款。"],
  err6090: ["The payment could not be completed just now. Nothing was charged; please try again.", "支付暂时无法完成，未扣款，请重试。"],
  errPaymentRefused: ["The payment was refused. Nothing was charged.", "支付被拒绝，未扣款。"],
  errGeneric: ["That did not work. Please try again.", "操作未成功，请重试。"],
  triesLeft1: [" 1 try left.", "还剩 1 次机会。"],
  triesLeftN: [" {n} tries left.", "还剩 {n} 次机会。"],
};

export const LANGS = ["zh-CN", "en"];
export const TABLES = { en: {}, "zh-CN": {} };
for (const [key, [en, zh]] of Object.entries({ ...ENTRIES, ...CREDIT_ENTRIES, ...FOLLOW_ENTRIES, ...PICTURE_ENTRIES, ...INBOX_ENTRIES, ...SEARCH_ENTRIES, ...AGENT_ENTRIES, ...ARBITER_ENTRIES,
  ...AFTER_SALE_ENTRIES })) {
  TABLES.en[key] = en;
  TABLES["zh-CN"][key] = zh;
}

/** A language tag ("zh", "zh-Hans-CN", "en-GB", "") to one we speak: Chinese or else English. */
export function pickLang(...tags) {
  for (const tag of tags) {
    if (!tag) continue;
    const low = String(tag).toLowerCase();
    if (low.startsWith("zh")) return "zh-CN";
    if (low.startsWith("en")) return "en";
  }
  return "en";
}

let current = "en";

export function setLang(lang) {
  current = LANGS.includes(lang) ? lang : pickLang(lang);
  return current;
}

export function lang() {
  return current;
}

/** The sentence `key` in the current language, `{name}` filled from `vars`. */
export function t(key, vars = {}) {
  const words = TABLES[current][key] ?? TABLES.en[key];
  if (words === undefined) throw new Error(`no words for ${key}`);
  return words.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

const moneyFormats = new Map();

/** Minor units to a price in the current locale: 12800 CNY -> "¥128.00" (both languages). */
export function formatMoney(amount, currency) {
  const id = current + currency;
  if (!moneyFormats.has(id)) {
    let fmt;
    try {
      // narrowSymbol: ¥ for CNY in English too, not "CN¥".
      fmt = new Intl.NumberFormat(current, { style: "currency", currency, currencyDisplay: "narrowSymbol" });
    } catch {
      fmt = new Intl.NumberFormat(current, { style: "currency", currency });
    }
    moneyFormats.set(id, fmt);
  }
  const fmt = moneyFormats.get(id);
  const digits = fmt.resolvedOptions().maximumFractionDigits;
  return fmt.format(amount / 10 ** digits);
}

/** The number of minor-unit digits of `currency` (2 for CNY, 0 for JPY). */
export function currencyDigits(currency) {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

/** 24-hour clock in the current locale: "09:05", "21:30". */
export function formatClock(ts) {
  return new Intl.DateTimeFormat(current, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(ts));
}

/** A date and 24-hour time: "2026年12月2日 21:30", "2 Dec 2026, 21:30". */
export function formatDateTime(ts) {
  return new Intl.DateTimeFormat(current === "en" ? "en-GB" : current, { dateStyle: "medium", timeStyle: "short", hourCycle: "h23" })
    .format(new Date(ts));
}

/** "Today", "Yesterday" or the date, in the current language (`now` for tests). */
export function formatDay(ts, now = Date.now()) {
  const d = new Date(ts);
  const today = new Date(now);
  if (d.toDateString() === today.toDateString()) return t("today");
  const y = new Date(today);
  y.setDate(today.getDate() - 1);
  if (d.toDateString() === y.toDateString()) return t("yesterday");
  return new Intl.DateTimeFormat(current, { year: "numeric", month: "short", day: "numeric" }).format(d);
}

/** A duration in words: 42 s / 42 秒, 5 min, 3 h 10 min, 9 days 23 h. */
export function formatDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return t("durS", { s });
  const m = Math.floor(s / 60);
  if (m < 60) return t("durM", { m });
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return t("durHM", { h: hrs, m: m % 60 });
  return t("durDH", { d: Math.floor(hrs / 24), h: hrs % 24 });
}

/** An error from the hub (or a lost connection) in words a buyer understands. */
export function errorText(err) {
  if (!err) return "";
  const code = err.code;
  const key = code === "disconnected" ? "errDisconnected" : `err${code}`;
  let words;
  if (TABLES.en[key] !== undefined) words = t(key);
  else if (typeof code === "number" && code >= 6000) words = t("errPaymentRefused");
  else if (typeof code === "number" && code >= 5000) words = t("err5001");
  else words = t("errGeneric");
  const details = err.details || {};
  // The marketplace's own reason, as it wrote it (we cannot translate it).
  if (code === 4007 && typeof details.reason === "string" && details.reason) words += ` (${details.reason})`;
  if (code === 4009 && typeof details.retry_after_ms === "number") {
    words += " " + t("err4009At", { when: formatDateTime(Date.now() + details.retry_after_ms) });
  }
  if (code === 6011 && Number.isInteger(details.covered) && typeof details.currency === "string") {
    words = t("err6011Covered", { amount: formatMoney(details.covered, details.currency) });
  }
  if (code === 6040 && typeof details.attempts_left === "number") {
    words += details.attempts_left === 1 ? t("triesLeft1") : t("triesLeftN", { n: details.attempts_left });
  }
  return words;
}
