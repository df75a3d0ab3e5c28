"""Invitations, off-platform payment, payment links and e-mail in folded text.

Each pattern runs on folded text (lower case, simplified characters, look-alikes
mapped), so "薇信", "V信", "ＶＸ", "➕v" and "加微" need one spelling each. Slang
that only exists to dodge filters ("薇信", "vx", "zfb", "绿泡泡") is flagged on
sight; the plain names of apps ("微信", "支付宝", "QQ", "WeChat") only with a
verb that moves the conversation or the money ("加", "转", "add me on"),
because buyers legitimately ask whether a phone runs WeChat. A shop warning
its buyers ("不要私下交易", "don't pay outside the platform") is not a finding:
a negation just before a payment phrase, or a warning right after it, cancels it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .literals import Gate
from .normalize import fold_pattern


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(fold_pattern(pattern))


_ID = r"(?:\s*(?:号|id|账号|帐号)?\s*(?:是|为|:|=|-|is)?\s*[a-z0-9][a-z0-9_-]{4,19})?"
"""An account id that may follow a keyword; masked together with it."""

_PATTERNS: tuple[tuple[str, str], ...] = (
    ("link", r"wxp://\S*|alipays?://\S*|(?:weixin\.qq\.com/r|u\.wechat\.com|qr\.alipay\.com|ds\.alipay\.com"
             r"|render\.alipay\.com|paypal\.me|venmo\.com|cash\.app|wa\.me|t\.me)/?\S*"),
    ("link", r"(?:收款|付款|个人)\s*(?:码|二维码)|(?:发|加|付|转)[^\n]{0,6}二维码|二维码\s*(?:付|转|加|扫)"
             r"|扫\s*(?:我|这个|一下|下)?\s*(?:的\s*)?(?:二维码|码)\s*(?:付|转|加|支付)"
             r"|(?:scan|send you)\s+(?:my\s+|the\s+|a\s+)?(?:qr|payment code)"),
    ("wechat", r"(?:薇|威|徽|维|位|危|卫)信" + _ID),
    ("wechat", r"(?<![a-z])(?:v|w)\s*(?:信|x)(?![a-z]|-\w)" + _ID),
    ("wechat", r"(?:微|威|薇)\s*x(?![a-z])" + _ID),
    ("wechat", r"(?:加|嘉|家|\+|十)\s*(?:个|一下|下)?\s*(?:我\s*)?(?:v|微|薇|威)(?![a-z领字])" + _ID),
    ("wechat", r"(?<![a-z])v\s*:\s*[a-z0-9][a-z0-9_-]{4,19}"),
    ("wechat", r"wei\s?xin|wechat\s*(?:id|号)" + _ID + r"|wxid_[a-z0-9_-]+|绿泡泡|绿色聊天|同号|同手机号"),
    ("wechat", r"(?:加|添加|联系|私聊|找|我的|留|给|发你|扫|上|走)\s*(?:个|一下|下)?\s*(?:我\s*)?(?:的\s*)?微信" + _ID),
    ("wechat", r"微信\s*(?:号|id|聊|联系|私聊|上聊|详聊|加我|找我|搜)" + _ID),
    ("wechat", r"(?:add|find|contact|message|text|dm|reach|ping|hit)\s+me(?:\s+up)?\s+(?:on|at|via|in)\s+"
               r"(?:we\s?chat|wx)"),
    ("wechat", r"(?:my|our)\s+we\s?chat(?:\s+id)?(?:\s+is)?" + _ID),
    ("qq", r"(?:加|添加|联系|私聊|找|我的|留个|给个)\s*(?:我\s*)?(?:的\s*)?(?:qq|扣扣|企鹅)"),
    ("qq", r"(?<![a-z])(?:qq|扣扣|企鹅)\s*(?:号|聊|联系|私聊|加我|找我)|企鹅号|q号"),
    ("qq", r"(?:add|find|contact|message)\s+me\s+on\s+qq|my\s+qq(?:\s+(?:id|number))?(?:\s+is)?"),
    ("alipay", r"zfb|zhi\s?fu\s?bao|吱付宝|支fu宝|支付包|之付宝"),
    ("alipay", r"支付宝\s*(?:号|账号|帐号|账户|id)" + _ID + r"|(?:加|我的)\s*(?:我\s*)?支付宝"),
    ("alipay", r"(?:my|our)\s+alipay(?:\s+(?:id|account))?(?:\s+is)?"),
    ("messenger", r"(?:add|find|contact|message|text|dm|reach|ping|hit)\s+me(?:\s+up)?\s+(?:on|at|via|in)\s+"
                  r"(?:whats\s?app|telegram|tg|line|kakao|signal|skype|instagram|ig|facebook|fb|messenger|viber)"),
    ("messenger", r"(?:my|our)\s+(?:whats\s?app|telegram|tg|line|kakao|signal|skype|instagram|ig|viber)"
                  r"(?:\s+(?:id|number|handle|account))?(?:\s+is)?|whats\s?app\s+me|telegram\s+me|@[a-z0-9_]{5,}\s+on\s+"
                  r"(?:telegram|instagram|ig)"),
    ("phone", r"(?:留|给|发|加)\s*(?:个|一下|下)?\s*(?:你的|我|你)?\s*(?:联系方式|电话|手机号|号码)"
              r"|(?:电话|手机)\s*(?:联系|沟通|多少|号多少)|打我(?:电话|手机)|call me (?:at|on)|text me (?:at|on)"
              r"|your (?:phone )?number|my (?:phone |cell |mobile )?number is"),
)

_PAYMENT = _compile(
    r"私下\s*(?:交易|转账|付款|付|转|交|联系|成交)|线下\s*(?:交易|转账|付款|支付|成交)|不走平台|别走平台|绕过平台|绕开平台"
    r"|跳过平台|平台外|走平台[^\n]{0,6}(?:手续费|扣点|抽成|贵|麻烦)|直接\s*(?:转账|转给我|打款|打给我|付给我|给我转|转我)"
    r"|(?:转|打|付|汇)\s*(?:钱|款)?\s*(?:给|到)?\s*我\s*(?:的)?\s*(?:微信|支付宝|银行卡|卡上|卡里|账户|账号|私人)"
    r"|(?:微信|支付宝|银行卡|银行)\s*(?:转账|转给我|付给我|打款|转我|汇款|也行|也可以)|转账给我|打款给我"
    r"|pay\s+(?:me\s+)?(?:directly|outside|off\s+(?:the\s+)?(?:app|platform|site))|outside\s+(?:of\s+)?(?:the|this)\s+"
    r"(?:platform|app|site)|off\s+(?:the\s+)?(?:platform|app|site)|paypal|venmo|zelle|cash\s?app|western\s+union"
    r"|moneygram|wire\s+(?:it|the\s+money|me)|bank\s+transfer|direct\s+transfer|friends\s+(?:and|&)\s+family"
    r"|(?:pay|send)\s+(?:in|with|me)\s+(?:usdt|btc|bitcoin|crypto)|skip\s+the\s+(?:fee|escrow|platform)"
    r"|avoid\s+the\s+(?:fee|escrow)|without\s+(?:the\s+)?escrow"
)
_NEGATION_BEFORE = _compile(
    r"(?:不要|别|勿|不能|不可以|不支持|禁止|不会|没有|避免|谨防|小心|防止|拒绝|不接受|不提供"
    r"|don'?t|do not|never|not|no|avoid|beware of|against)\W{0,3}(?:\w{0,3}\W{0,2})?$"
)
_WARNING_AFTER = _compile(
    r"^\W{0,2}(?:\w{0,3}\W{0,2})?(?:不受|有风险|风险|不安全|没有保障|不保障|不支持|是诈骗"
    r"|is not protected|isn'?t|is risky|are not)"
)
_PROTECTIVE = _compile(
    r"请(?:走|在|通过|用)平台|平台内|不受(?:平台)?保护|平台有保障|担保交易|we do not accept|we don'?t accept"
    r"|through the (?:platform|app)|in-app checkout|checkout here|not protected|can'?t protect|for your safety"
)
"""A shop's warning about off-platform payment: its payment words are not an invitation."""
_EMAIL_GATE = re.compile(r"[@#]|\bat\b|\[at\]|\(at\)|\{at\}")
_EMAIL = re.compile(
    r"[a-z0-9][a-z0-9._+-]{0,63}\s*(?:@|\(at\)|\[at\]|\{at\}|\sat\s|#)\s*[a-z0-9-]+"
    r"(?:\s*(?:\.|\(dot\)|\[dot\]|\sdot\s|点|。)\s*[a-z0-9-]+)*?"
    r"\s*(?:\.|\(dot\)|\[dot\]|\sdot\s|点|。)\s*(?:com|cn|net|org|edu|io|co|me|info|biz|uk|hk|tw|jp|de)(?![a-z])"
)

_COMBINED = _compile("|".join(f"(?P<k{index}>{pattern})" for index, (_, pattern) in enumerate(_PATTERNS)))
"""All of them in one pass (one scan of the text instead of twenty)."""
_KIND_OF = {f"k{index}": kind for index, (kind, _) in enumerate(_PATTERNS)}
_EITHER_GATE = Gate([_COMBINED.pattern, _PAYMENT.pattern])
_COMBINED_GATE = Gate([_COMBINED.pattern])
_PAYMENT_GATE = Gate([_PAYMENT.pattern])
"""A text holding none of these patterns' necessary literals skips them (most chat does):
one search for both, then one for each only if it found something."""


@dataclass(frozen=True, slots=True)
class WordHit:
    kind: str
    start: int
    end: int


def scan(text: str) -> Iterator[WordHit]:
    """Invitations, payment phrases, links and e-mail addresses in folded ``text``."""
    either = _EITHER_GATE.may_match(text)
    if either and _COMBINED_GATE.may_match(text):
        for m in _COMBINED.finditer(text):
            yield WordHit(_KIND_OF[m.lastgroup or ""], m.start(), m.end())
    payments = _PAYMENT.finditer(text) if either and _PAYMENT_GATE.may_match(text) else ()
    protective: bool | None = None
    for m in payments:
        start, end = m.span()
        if protective is None:
            protective = _PROTECTIVE.search(text) is not None
        if protective:
            break
        if _NEGATION_BEFORE.search(text[max(0, start - 12) : start]) or _WARNING_AFTER.search(text[end : end + 16]):
            continue  # a warning against it, not an invitation
        yield WordHit("payment", start, end)
    if _EMAIL_GATE.search(text) is not None:
        for m in _EMAIL.finditer(text):
            yield WordHit("email", m.start(), m.end())
