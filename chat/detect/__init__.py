"""Off-platform contact and payment detection for chat messages.

``detect(text, previous)`` returns findings (a kind and the span in ``text``):
phone numbers, WeChat/QQ/Alipay ids and invitations, other messengers,
payment outside the platform, bank card numbers, payment links and QR codes,
and e-mail addresses. The escrow only protects a buyer who pays through the
platform, and the commonest fraud starts by moving the conversation elsewhere.

The text is folded first (:mod:`.normalize`: NFKC, Chinese and circled
numerals to digits, traditional to simplified, look-alike letters), then read
by two matchers: :mod:`.numbers` (digit groups, so separators and emoji between
digits do not hide a number) and :mod:`.words` (invitations, payment phrases,
links, e-mail). ``previous`` holds the sender's last few texts in the same
conversation, oldest first, so a number sent in pieces ("138", "1234", "5678")
is found in the message that completes it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from . import numbers, words
from .normalize import Folded, fold

KINDS = ("phone", "wechat", "qq", "alipay", "messenger", "payment", "bank_card", "link", "email")
"""Every kind a finding may have, in the order flags are reported."""

PREVIOUS_LIMIT = 4
"""Earlier messages a number may be spread over (besides the current one)."""

MASK = "***"

_LEADING_DIGIT = re.compile(r"[\W_]*[0-9]")
_TRAILING_DIGIT = re.compile(r"[0-9][\W_]*$")


@dataclass(frozen=True, slots=True)
class Finding:
    """One match: its kind and the ``[start, end)`` span in the original text."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Prepared:
    """A text folded once, for both :func:`continues_number` and :func:`detect`."""

    text: str
    folded: Folded
    digits: str


def prepare(text: str) -> Prepared:
    folded = fold(text)
    return Prepared(text, folded, numbers.digit_text(folded.text))


def continues_number(prepared: Prepared) -> bool:
    """Whether the text may continue a number from earlier messages (so the caller
    need only fetch them then)."""
    return _LEADING_DIGIT.match(prepared.digits) is not None


def detect(text: str | Prepared, previous: Sequence[str] = ()) -> list[Finding]:
    """Findings in ``text``, sorted by position (see the module's docstring)."""
    prepared = text if isinstance(text, Prepared) else prepare(text)
    folded, digits = prepared.folded, prepared.digits
    found: list[Finding] = []
    for n in numbers.scan(digits):
        found.append(Finding(n.kind, *folded.span(n.start, n.end)))
    for w in words.scan(folded.text):
        found.append(Finding(w.kind, *folded.span(w.start, w.end)))
    if previous and not any(f.kind in ("phone", "wechat", "qq", "bank_card") for f in found):
        found.extend(_split_number(digits, folded, previous))
    found.sort(key=lambda f: (f.start, f.end))
    return found


def _split_number(digits: str, folded: Folded, previous: Sequence[str]) -> list[Finding]:
    """A number whose first pieces are at the end of earlier messages.

    Only tried when this message starts with digits; the earlier messages are
    joined in front of it with a line break, and only a finding that reaches
    into this message counts (its span clipped to this message)."""
    if _LEADING_DIGIT.match(digits) is None:
        return []
    parts: list[str] = []
    for earlier in reversed(previous[-PREVIOUS_LIMIT:]):
        text = numbers.digit_text(fold(earlier).text)
        parts.append(text)
        if _TRAILING_DIGIT.search(text) is None or not numbers.only_number(text):
            break
    if not parts or _TRAILING_DIGIT.search(parts[0]) is None:
        return []
    head = "\n".join(reversed(parts)) + "\n"
    offset = len(head)
    found = []
    for n in numbers.scan(head + digits):
        if n.end > offset:
            found.append(Finding(n.kind, *folded.span(max(0, n.start - offset), n.end - offset)))
    return found


def flags(findings: Sequence[Finding]) -> list[str]:
    """The distinct kinds of ``findings`` in :data:`KINDS` order (stored with a message)."""
    present = {f.kind for f in findings}
    return [kind for kind in KINDS if kind in present]


def mask(text: str, findings: Sequence[Finding]) -> str:
    """``text`` with every finding's span replaced by :data:`MASK` (overlaps merged)."""
    spans: list[list[int]] = []
    for f in sorted(findings, key=lambda f: f.start):
        if spans and f.start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], f.end)
        else:
            spans.append([f.start, f.end])
    out, last = [], 0
    for start, end in spans:
        out.append(text[last:start])
        out.append(MASK)
        last = end
    out.append(text[last:])
    return "".join(out)


__all__ = ["KINDS", "MASK", "PREVIOUS_LIMIT", "Finding", "Prepared", "continues_number", "detect", "flags", "mask",
           "prepare"]
