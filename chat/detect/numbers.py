"""Phone, QQ, WeChat and bank card numbers in folded text.

A number is read as *groups* of digits separated by at most a few non-word
characters (spaces, dashes, dots, emoji, line breaks), so "138 1234 5678",
"1-3-8-1-2-3-4-5-6-7-8" and "1🌸3🌸8…" are all the same number. Every run of
consecutive groups is tried as a whole, which finds "13812345678" inside
"¥1380 13812345678" without ever cutting a group: an order number
("20231202003412") or a tracking number ("SF1234567890123") is one group and
never contains a phone. Digits glued to a Latin word ("SF…", "RTX-4090") are a
code, unless the word is itself a contact word ("vx13812345678").

China mobile numbers (the bulk of the traffic) are checked by a regular
expression; other numbers only near a phone word or after "+", and then by
``phonenumbers``, whose validation costs tens of microseconds and so is kept
off the common path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import phonenumbers

_HOMOGLYPH_DIGIT = re.compile(r"(?<=[0-9])[oli]+(?![a-z])|(?<![a-z])[oli]+(?=[0-9])")
_DIGIT_FOR = str.maketrans("oli", "011")
_RUN = re.compile(r"[0-9](?:[\W_]{0,4}[0-9])*")
_GROUP = re.compile(r"[0-9]+")
_MOBILE = re.compile(r"(?:0086|86)?1[3-9][0-9]{9}")
_LETTERS_BEFORE = re.compile(r"([a-z]+)[-_/#.:]?$")

_CONTACT_WORDS = frozenset(  # a Latin word glued to digits that makes them contact details, not a code
    [
        "v", "vx", "wx", "wechat", "weixin", "qq", "tel", "phone", "mobile", "cell", "call", "text", "whatsapp",
        "wa", "id", "no", "num", "number", "line", "telegram",
    ]
)
_PHONE_CONTEXT = re.compile(
    r"电话|手机|座机|号码|联系|致电|打我|打给我|call|phone|mobile|cell|tel|text me|whatsapp|number|reach me|ring me"
)
_QQ_CONTEXT = re.compile(r"qq|扣扣|企鹅|q号|q群")
_WECHAT_CONTEXT = re.compile(r"微信|薇信|威信|v信|vx|wx|wechat|weixin|加v|\+v|加微|同号")
_BANK_CONTEXT = re.compile(
    r"卡号|银行|账号|帐号|工行|建行|农行|中行|招行|交行|储蓄卡|借记卡|信用卡|收款|转账|汇款|card|account|iban|bank|wire"
)
_ORDER_CONTEXT = re.compile(
    r"订单|单号|运单|快递|物流|编号|货号|型号|批次|发票|序列号|条码|order|tracking|track|invoice|sku|model|serial|ref|#"
)
_CONTEXT_BEFORE = 14


@dataclass(frozen=True, slots=True)
class NumberHit:
    kind: str
    start: int
    end: int


def digit_text(folded: str) -> str:
    """Look-alike letters next to digits read as digits ("l38 O0l2" → "138 0012");
    same length, so positions stay valid."""
    if "o" not in folded and "l" not in folded and "i" not in folded:
        return folded
    return _HOMOGLYPH_DIGIT.sub(lambda m: m.group().translate(_DIGIT_FOR), folded)


def _luhn(digits: str) -> bool:
    total = 0
    for index, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if index % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _valid_phone(digits: str, plus: bool) -> bool:
    try:
        if plus:
            return phonenumbers.is_valid_number(phonenumbers.parse("+" + digits, None))
        return any(
            phonenumbers.is_valid_number(phonenumbers.parse(digits, region)) for region in ("CN", "US")
        )
    except phonenumbers.NumberParseException:
        return False


def scan(text: str) -> Iterator[NumberHit]:
    """Numbers that are contact or card details in folded ``text``."""
    for run in _RUN.finditer(text):
        start, end = run.span()
        if end - start < 5:
            continue
        before = text[max(0, start - _CONTEXT_BEFORE) : start]
        glued = _LETTERS_BEFORE.search(text[max(0, start - 12) : start])
        if glued and glued.group(1) not in _CONTACT_WORDS:
            continue  # a code such as SF1234567890123 or RTX-4090
        groups = [(m.start() + start, m.end() + start) for m in _GROUP.finditer(run.group())]
        yield from _classify(text, groups, before, start)


def _classify(text: str, groups: list[tuple[int, int]], before: str, start: int) -> Iterator[NumberHit]:
    qq = _QQ_CONTEXT.search(before) is not None
    wechat = _WECHAT_CONTEXT.search(before) is not None
    phone_ctx = _PHONE_CONTEXT.search(before) is not None
    bank = _BANK_CONTEXT.search(before) is not None
    order = _ORDER_CONTEXT.search(before) is not None and not (qq or wechat or phone_ctx)
    plus = start > 0 and text[start - 1] == "+"
    if qq or wechat:  # an account id: the whole run, however it is grouped
        joined = "".join(text[a:b] for a, b in groups)
        if (5 if qq else 6) <= len(joined) <= 20:
            yield NumberHit("qq" if qq else "wechat", groups[0][0], groups[-1][1])
            return
    digits = ["".join(text[a:b] for a, b in groups[i:]) for i in range(len(groups))]
    # digits[i] holds groups i.. joined; a window i..j is a prefix of it.
    for i in range(len(groups)):
        tail = digits[i]
        length = 0
        for j in range(i, len(groups)):
            length += groups[j][1] - groups[j][0]
            if length > 19:
                break
            window = tail[:length]
            span = (groups[i][0], groups[j][1])
            whole = i == 0 and j == len(groups) - 1
            kind = _kind(window, qq, wechat, phone_ctx, bank, order, plus and i == 0, j - i + 1, whole)
            if kind is not None:
                yield NumberHit(kind, *span)
                return


def _kind(
    digits: str, qq: bool, wechat: bool, phone_ctx: bool, bank: bool, order: bool, plus: bool, groups: int, whole: bool
) -> str | None:
    """What a window of digits is, given the words before its run. Numbers other
    than China mobiles are only tried as a whole run (``phonenumbers`` is slow)."""
    n = len(digits)
    if qq and 5 <= n <= 11:
        return "qq"
    if order:
        return None
    if _MOBILE.fullmatch(digits):
        return "wechat" if wechat else "phone"
    if wechat and 6 <= n <= 20:
        return "wechat"
    if 16 <= n <= 19 and (bank or (_luhn(digits) and groups >= 3 and digits[0] in "3456")):
        return "bank_card"
    if (plus or phone_ctx) and whole and 7 <= n <= 15 and _valid_phone(digits, plus):
        return "phone"
    return None


_ONLY_NUMBER = re.compile(r"[\W_]*[0-9](?:[\W_]{0,4}[0-9])*[\W_]*")


def only_number(text: str) -> bool:
    """Whether ``text`` is nothing but one spread-out number (a piece of a longer one)."""
    return _ONLY_NUMBER.fullmatch(text) is not None
