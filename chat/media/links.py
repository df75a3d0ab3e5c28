"""Short-lived signed picture addresses, for ``<img>`` tags (which cannot send a token).

``/media/<sha>?conv=<id>&exp=<epoch s>&sig=<hex>``: the signature is an HMAC of the
hash, the conversation and the expiry, keyed by a key derived from ``TOKEN_SECRET``
(every node has it; rotating the secret voids every address). The hub signs only after
it has checked that the asking user may see the picture in that conversation, so the
address carries that check for ``MEDIA_URL_TTL`` seconds. Expiries are rounded up to a
multiple of the TTL, so everyone looking at a picture in the same period gets the same
address and the browser's cache works; an address lives between one and two TTLs.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlencode

from .store import Variant


@dataclass(frozen=True, slots=True)
class Signer:
    key: bytes
    ttl: int
    """Seconds; an address is valid for at least this long."""

    @classmethod
    def from_secret(cls, token_secret: str, ttl: float) -> Signer:
        key = hmac.new(token_secret.encode(), b"tradechat media address v1", hashlib.sha256).digest()
        return cls(key, max(1, int(ttl)))

    def _mac(self, sha256: str, conv: str, exp: int) -> str:
        return hmac.new(self.key, f"{sha256}\n{conv}\n{exp}".encode(), hashlib.sha256).hexdigest()

    def expiry(self, now_s: int) -> int:
        return (now_s // self.ttl + 2) * self.ttl

    def address(self, sha256: str, conv: str, variant: Variant, now_s: int) -> str:
        exp = self.expiry(now_s)
        path = f"/media/{sha256}" + ("/thumb" if variant == "thumb" else "")
        return f"{path}?{urlencode({'conv': conv, 'exp': exp, 'sig': self._mac(sha256, conv, exp)})}"

    def valid(self, sha256: str, conv: str, exp: str, sig: str, now_s: int) -> bool:
        if not exp.isdigit() or len(exp) > 12 or int(exp) <= now_s:
            return False
        return hmac.compare_digest(self._mac(sha256, conv, int(exp)), sig)
