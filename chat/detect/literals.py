"""Necessary literals: a cheap test that lets most messages skip the detection patterns.

Every message passes through the word patterns, and Python's regular expression engine
tries each of their alternatives at every position of the text: about 15 µs for a short
message, most of detection's cost. Yet nearly every alternative needs some fixed piece of
text to match ("wechat", "微信", "qq", "paypal", a "+" ...). :func:`required` reads a
pattern's syntax tree and returns such a set of strings, one of which any match must
contain; :class:`Gate` searches for them all at once, and a text holding none of them is
known not to match, so the pattern is not run. That is exact, not a heuristic: the gate
only ever skips patterns that cannot match.

The set is derived, not written by hand, so it stays right when a pattern changes. Where
a pattern admits several such sets (``(?:v|w)\\s*(?:信|x)`` needs a "v" or "w" and also a
"信" or "x"), the one least likely in ordinary chat is kept, judged by rough character
frequencies: a gate of common letters would let every message through.
"""

from __future__ import annotations

import re
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

_LETTER_FREQUENCY = dict(zip(
    "etaoinshrdlcumwfgypbvkjxqz",
    (0.12, 0.09, 0.08, 0.075, 0.07, 0.067, 0.063, 0.061, 0.06, 0.043, 0.04, 0.028, 0.028, 0.024, 0.024, 0.022,
     0.02, 0.02, 0.019, 0.015, 0.01, 0.008, 0.0015, 0.0015, 0.001, 0.0007),
    strict=True,
))


def _likelihood(ch: str) -> float:
    """Rough chance that a character of chat text is ``ch`` (only used to compare sets)."""
    if ch in _LETTER_FREQUENCY:
        return _LETTER_FREQUENCY[ch]
    if ch == " ":
        return 0.15
    if ch.isdigit():
        return 0.02
    if ord(ch) >= 0x2E80:  # CJK: thousands of characters share the text
        return 0.003
    return 0.002  # punctuation and symbols


def _cost(strings: frozenset[str]) -> float:
    """How likely a text is to hold one of ``strings``: lower is a sharper gate."""
    total = 0.0
    for s in strings:
        p = 1.0
        for ch in s:
            p *= _likelihood(ch)
        total += p
    return total


def _chars(items: list[tuple[Any, Any]]) -> frozenset[str] | None:
    """The characters a small class of plain characters admits (None if it is anything else)."""
    chars: set[str] = set()
    for op, av in items:
        if op is sre.LITERAL:
            chars.add(chr(av))
        elif op is sre.RANGE and av[1] - av[0] < 8:
            chars.update(chr(c) for c in range(av[0], av[1] + 1))
        else:  # a negation, a category such as \s, a wide range
            return None
    return frozenset(chars) or None


def _required(sequence: Any) -> frozenset[str] | None:
    candidates: list[frozenset[str]] = []
    run = ""
    for op, av in sequence:
        if op is sre.LITERAL:
            run += chr(av)
            continue
        if run:
            candidates.append(frozenset((run,)))
            run = ""
        found: frozenset[str] | None = None
        if op is sre.IN:
            found = _chars(av)
        elif op is sre.SUBPATTERN and not av[1] & re.IGNORECASE:
            found = _required(av[-1])
        elif op is sre.BRANCH:
            branches = [_required(b) for b in av[1]]
            if all(b is not None for b in branches):
                found = frozenset().union(*(b for b in branches if b is not None))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and av[0] >= 1:
            found = _required(av[2])
        # Anything else (anchors, lookarounds, ".", categories, optional parts) requires nothing.
        if found is not None:
            candidates.append(found)
    if run:
        candidates.append(frozenset((run,)))
    return min(candidates, key=_cost) if candidates else None


def required(pattern: str) -> frozenset[str] | None:
    """Strings one of which every match of ``pattern`` contains; None if none is known."""
    parsed = sre_parse.parse(pattern)
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return None  # literals would not be compared as written
    return _required(parsed)


class Gate:
    """Whether a text may match any of some patterns (False means: none of them can)."""

    def __init__(self, patterns: list[str]) -> None:
        strings: set[str] = set()
        self._search: Any = None
        for pattern in patterns:
            found = required(pattern)
            if found is None:  # a pattern that needs nothing fixed: always run them
                return
            strings |= found
        # Longest first, so the alternation's charset prefix and backtracking stay short.
        ordered = sorted(strings, key=lambda s: (-len(s), s))
        self._search = re.compile("|".join(re.escape(s) for s in ordered)).search

    def may_match(self, text: str) -> bool:
        return self._search is None or self._search(text) is not None
