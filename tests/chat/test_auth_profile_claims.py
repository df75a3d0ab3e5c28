"""The ``name`` and ``avatar`` claims: what a client may show, or nothing."""

from __future__ import annotations

import pytest

from chat.auth import avatar_claim, mint, name_claim, verify

SECRET = "s" * 32


@pytest.mark.parametrize("value", [
    "http://cdn.example.com/a.png", "//cdn.example.com/a.png", "javascript:alert(1)", "data:image/png;base64,AA",
    "https://cdn.example.com/a b.png", 'https://x.example/"onerror="x', "https://x.example/<svg>",
    "https://" + "a" * 600 + ".example/a.png", 42, None, "",
])
def test_an_avatar_that_is_not_a_plain_https_url_is_dropped(value: object) -> None:
    assert avatar_claim(value) is None


def test_an_https_avatar_is_kept() -> None:
    assert avatar_claim("https://cdn.example.com:8443/a/lily.png?v=2") == "https://cdn.example.com:8443/a/lily.png?v=2"


@pytest.mark.parametrize(("value", "expected"), [
    (" 丽丽 ", "丽丽"), ("Lily", "Lily"), ("", None), ("   ", None), ("a\nb", None), ("x" * 65, None), (7, None),
])
def test_a_name_is_one_trimmed_line(value: object, expected: str | None) -> None:
    assert name_claim(value) == expected


def test_a_token_carries_them_and_a_bad_avatar_does_not_spoil_it() -> None:
    ident = verify(SECRET, mint(SECRET, "a1", "agent", shop="s", name="Lily", avatar="https://x.example/a.png"))
    assert (ident.name, ident.avatar) == ("Lily", "https://x.example/a.png")
    ident = verify(SECRET, mint(SECRET, "a1", "agent", shop="s", avatar="http://x.example/a.png"))
    assert (ident.user, ident.name, ident.avatar) == ("a1", None, None)
