"""User tokens: the marketplace signs them (HS256), the hub only verifies.

A token names the user (``sub``), their ``role`` and, for shop agents, their
``shop``. They are short-lived: a browser gets a fresh one from the
marketplace's backend before it connects.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Literal

import jwt

from .protocol.errors import ErrorCode, ProtocolError

Role = Literal["buyer", "agent", "arbiter"]
ROLES: tuple[Role, ...] = ("buyer", "agent", "arbiter")
ALGORITHM = "HS256"
_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")
_AVATAR = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&()*+,;=:@%/?#-]*)?$")
AVATAR_MAX = 512
NAME_MAX = 64
RESERVED_USERS = frozenset({"system"})
"""User ids the hub itself posts as (cards, hand-over notes): no token may claim them, or its
holder could post under the hub's name and claim the card ids of its own orders."""


@dataclass(frozen=True, slots=True)
class Identity:
    user: str
    role: Role
    shop: str | None
    name: str | None
    expires_at: int
    """Epoch seconds; the connection is closed when the token expires."""
    avatar: str | None = None
    """An https picture URL (checked by :func:`avatar_claim`), shown beside an agent's name."""


def name_claim(value: object) -> str | None:
    """A display name as shown to others: trimmed, one line, at most :data:`NAME_MAX`
    characters; anything else counts as no name (the user id is shown instead)."""
    if not isinstance(value, str):
        return None
    name = value.strip()
    if not name or len(name) > NAME_MAX or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return None
    return name


def avatar_claim(value: object) -> str | None:
    """An avatar URL clients may put in an ``<img src>``: https only, no spaces, quotes or angle
    brackets, at most :data:`AVATAR_MAX` characters; anything else counts as no avatar."""
    if not isinstance(value, str) or len(value) > AVATAR_MAX or not _AVATAR.match(value):
        return None
    return value


def mint(
    secret: str,
    user: str,
    role: Role,
    *,
    shop: str | None = None,
    name: str | None = None,
    avatar: str | None = None,
    ttl: int = 3600,
    now: float | None = None,
) -> str:
    """Sign a token (what the marketplace backend does; also ``python -m chat token``)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if role == "agent" and not shop:
        raise ValueError("an agent token must name its shop")
    if user.lower() in RESERVED_USERS:
        raise ValueError(f"the user id {user!r} is reserved for the hub")
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {"sub": user, "role": role, "iat": issued, "exp": issued + ttl}
    if shop:
        claims["shop"] = shop
    if name:
        claims["name"] = name
    if avatar:
        claims["avatar"] = avatar
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def mint_listing(secret: str, shop: str, listing: dict[str, object], *, ttl: int = 86_400) -> str:
    """Sign a listing's product card, so its price can be paid without an offer.

    The marketplace puts this token in its listing page; the hub trusts the
    signed title, price and currency, never the ones a browser sends alone.
    """
    now = time.time()
    # ``iat`` in milliseconds' precision: it orders re-signed cards of one listing.
    claims = {"typ": "listing", "shop": shop, "listing": listing, "iat": round(now, 3), "exp": int(now) + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_listing(secret: str, token: str) -> tuple[str, dict[str, object], int]:
    """The (shop, listing, signed at in epoch ms) a listing token vouches for;
    TOKEN_INVALID/EXPIRED otherwise. A token without ``iat`` counts as the oldest."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "shop", "listing"]})
    except jwt.ExpiredSignatureError as exc:
        raise ProtocolError(ErrorCode.TOKEN_EXPIRED, "the listing token has expired") from exc
    except jwt.PyJWTError as exc:
        raise ProtocolError(ErrorCode.TOKEN_INVALID, f"the listing token is not valid ({exc})") from exc
    shop, listing = claims["shop"], claims["listing"]
    if claims.get("typ") != "listing" or not isinstance(shop, str) or not isinstance(listing, dict):
        raise ProtocolError(ErrorCode.TOKEN_INVALID, "not a listing token")
    issued = claims.get("iat", 0)
    if not isinstance(issued, int | float) or isinstance(issued, bool) or issued < 0:
        raise ProtocolError(ErrorCode.TOKEN_INVALID, "the listing token's iat is not a time")
    return shop, listing, int(issued * 1000)


class VerifiedTokens:
    """Tokens this node has verified, so a reconnect with the same token (a page load, a
    network blip, a second tab) costs a dictionary lookup instead of a JWT decode, the
    largest part of an ``auth``. Only successes are kept, each until its ``exp``; the
    identity a token names cannot change, since the token is signed."""

    LIMIT = 20_000

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._known: dict[str, Identity] = {}

    def verify(self, token: str) -> Identity:
        known = self._known.get(token)
        if known is not None:
            if time.time() < known.expires_at:
                return known
            del self._known[token]
        identity = verify(self.secret, token)
        if len(self._known) >= self.LIMIT:
            self._known.clear()
        self._known[token] = identity
        return identity


def verify(secret: str, token: str, *, now: float | None = None) -> Identity:
    """Check signature, expiry and claims; raise a typed error otherwise."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "role", "exp"], "verify_exp": now is None},
        )
        if claims.get("typ") == "listing":
            raise jwt.InvalidTokenError("a listing token is not a user token")
    except jwt.ExpiredSignatureError as exc:
        raise ProtocolError(ErrorCode.TOKEN_EXPIRED) from exc
    except jwt.PyJWTError as exc:
        raise ProtocolError(ErrorCode.TOKEN_INVALID, f"the token is not valid ({exc})") from exc
    exp = claims["exp"]
    if now is not None and isinstance(exp, int) and exp <= now:
        raise ProtocolError(ErrorCode.TOKEN_EXPIRED)
    user, role, shop, name = claims["sub"], claims["role"], claims.get("shop"), claims.get("name")
    if not isinstance(user, str) or not _ID.match(user):
        raise ProtocolError(ErrorCode.TOKEN_INVALID, "the token's subject is not a valid user id")
    if user.lower() in RESERVED_USERS:
        raise ProtocolError(ErrorCode.TOKEN_INVALID, f"the user id {user!r} is reserved for the hub")
    if role not in ROLES:
        raise ProtocolError(ErrorCode.TOKEN_INVALID, "the token's role is unknown")
    if role == "agent" and (not isinstance(shop, str) or not _ID.match(shop)):
        raise ProtocolError(ErrorCode.TOKEN_INVALID, "an agent token must name its shop")
    if not isinstance(exp, int):
        raise ProtocolError(ErrorCode.TOKEN_INVALID, "the token's expiry is not a number")
    return Identity(
        user=user,
        role=role,
        shop=shop if role == "agent" else None,
        name=name_claim(name),
        expires_at=exp,
        avatar=avatar_claim(claims.get("avatar")),
    )
