"""The necessary-literal gate must never skip a pattern that could match.

Soundness is checked on random patterns (any text a pattern matches holds one of the
strings :func:`required` derives from it) and on the detection patterns themselves (the
gated scan finds exactly what the ungated one finds, on the labelled corpus and on texts
built from the patterns' own pieces)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.detect import prepare, words
from chat.detect.literals import Gate, required

CORPUS = Path(__file__).with_name("detect_corpus.jsonl")
ALPHABET = "abx信微 :+"


def test_required_literals_of_hand_written_patterns() -> None:
    assert required(r"(?:v|w)\s*(?:信|x)") == frozenset({"信", "x"})  # the rarer side of the sequence
    assert required(r"a?b") == frozenset({"b"})
    assert required(r"(?:ab|cd)e*") == frozenset({"ab", "cd"})
    assert required(r"(?<![a-z])wechat") == frozenset({"wechat"})
    assert required(r"(?:ab|)c") == frozenset({"c"})
    assert required(r"x+y{2,3}") in (frozenset({"x"}), frozenset({"y"}))
    for none in (r"(?i)abc", r"(?i:abc)", r"[^x]", r"x*", r"\s+", r".", r"(?:ab|)"):
        assert required(none) is None, none


def _atoms() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from([re.escape(c) for c in ALPHABET] + [r"\s", ".", "[ab]", "[^a]", "[a-c]", "[信x]"]),
    )


def _regex() -> st.SearchStrategy[str]:
    return st.recursive(
        _atoms(),
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=4).map("".join),
            st.lists(inner, min_size=1, max_size=3).map(lambda xs: "(?:" + "|".join(xs) + ")"),
            st.tuples(inner, st.sampled_from(["?", "*", "+", "{2}", "{0,2}", "{1,3}", "+?"])).map(
                lambda t: "(?:" + t[0] + ")" + t[1]),
            inner.map(lambda x: "(?<![a])" + x),
            inner.map(lambda x: "(" + x + ")"),
        ),
        max_leaves=10,
    )


@settings(max_examples=600, deadline=None)
@given(pattern=_regex(), texts=st.lists(st.text(alphabet=ALPHABET, max_size=12), min_size=1, max_size=8))
def test_every_match_holds_a_required_literal(pattern: str, texts: list[str]) -> None:
    found = required(pattern)
    if found is None:
        return
    compiled = re.compile(pattern)
    for text in texts:
        if compiled.search(text) is not None:
            assert any(s in text for s in found), (pattern, text, found)


class _Open:
    """A gate that lets everything through: the scan as it was before the gates."""

    def may_match(self, text: str) -> bool:
        return True


def _ungated(text: str, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    with monkeypatch.context() as m:
        for name in ("_EITHER_GATE", "_COMBINED_GATE", "_PAYMENT_GATE"):
            m.setattr(words, name, _Open())
        return list(words.scan(text))


def test_gated_scan_finds_what_the_full_scan_finds_on_the_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [json.loads(line)["text"] for line in CORPUS.read_text().splitlines() if line.strip()]
    skipped = 0
    for text in texts:
        folded = prepare(text).folded.text
        assert list(words.scan(folded)) == _ungated(folded, monkeypatch), text
        skipped += not words._EITHER_GATE.may_match(folded)
    assert skipped > len(texts) // 4  # the gate does skip ordinary chat


_PIECES = sorted({s for p in (words._COMBINED.pattern, words._PAYMENT.pattern) for s in re.findall(r"[^\\()|?*+\[\]{}]{2,}", p)})


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(st.sampled_from(_PIECES) | st.text(alphabet="ab 我加v信:+@.1x", max_size=4), max_size=6))
def test_gated_scan_finds_what_the_full_scan_finds_on_pattern_pieces(parts: list[str]) -> None:
    text = " ".join(parts)
    with pytest.MonkeyPatch.context() as m:
        expected = _ungated(text, m)
    assert list(words.scan(text)) == expected


def test_a_gate_over_a_pattern_that_needs_nothing_runs_it_always() -> None:
    gate = Gate([r"wechat", r"\d{5,}"])
    assert gate.may_match("no letters of interest")
