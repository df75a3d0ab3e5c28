"""A node remembers the tokens it verified: a reconnect skips the JWT decode, and a
remembered token still stops working at its ``exp``."""

from __future__ import annotations

import time

import jwt
import pytest

from chat.auth import VerifiedTokens, mint
from chat.protocol.errors import ErrorCode, ProtocolError

SECRET = "s" * 32


def test_a_second_auth_with_the_same_token_does_not_decode_it(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = VerifiedTokens(SECRET)
    token = mint(SECRET, "u1", "agent", shop="s1")
    decoded: list[str] = []
    real = jwt.decode

    def counting(*args: object, **kwargs: object) -> object:
        decoded.append("once")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting)
    first = tokens.verify(token)
    assert tokens.verify(token) is first
    assert first.user == "u1" and first.shop == "s1"
    assert decoded == ["once"]


def test_a_remembered_token_expires_at_its_exp(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = VerifiedTokens(SECRET)
    token = mint(SECRET, "u1", "buyer", ttl=60)
    tokens.verify(token)
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    monkeypatch.setattr(jwt.api_jwt, "datetime", _FrozenDatetime(later))
    with pytest.raises(ProtocolError) as refused:
        tokens.verify(token)
    assert refused.value.code == ErrorCode.TOKEN_EXPIRED


def test_a_refused_token_is_not_remembered() -> None:
    tokens = VerifiedTokens(SECRET)
    forged = mint("x" * 32, "u1", "buyer")
    for _ in range(2):
        with pytest.raises(ProtocolError) as refused:
            tokens.verify(forged)
        assert refused.value.code == ErrorCode.TOKEN_INVALID


class _FrozenDatetime:
    """``datetime`` as PyJWT reads the clock, stopped at ``at`` (epoch seconds)."""

    def __init__(self, at: float) -> None:
        import datetime

        self._at = datetime.datetime.fromtimestamp(at, tz=datetime.UTC)

    def now(self, tz: object = None) -> object:
        return self._at
