"""Stable wire error codes and websocket close codes.

Error codes travel in ``error`` frames; the connection stays open. They are
grouped in ranges so a client can act on the range without knowing every code:

* 1000–1999: the frame itself is bad (fix the client);
* 2000–2999: authentication;
* 3000–3999: access to a conversation or a resource;
* 4000–4999: the request is well formed but not allowed now (rate, window);
* 5000–5999: the server failed; retrying the same request is safe;
* 6000–6999: payments (defined by :mod:`payments.errors`, passed through).

Close codes say whether a client should reconnect: 4000–4499 mean *do not
reconnect until you fix the cause* (new token, fixed client); 4500–4999 and
1001/1011/1012 mean *reconnect with backoff and resume from your cursors*.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """Numeric codes of ``error`` frames; never renumber a published code."""

    MALFORMED = 1001
    NOT_A_MAP = 1002
    UNKNOWN_TYPE = 1003
    INVALID_FIELDS = 1004
    TOO_LARGE = 1005
    TEXT_FRAME = 1006
    MEDIA_UNSUPPORTED = 1007
    MEDIA_TOO_LARGE = 1008
    MEDIA_TOO_MANY_PIXELS = 1009

    NOT_AUTHENTICATED = 2001
    TOKEN_INVALID = 2002
    TOKEN_EXPIRED = 2003
    ALREADY_AUTHENTICATED = 2004

    NOT_FOUND = 3001
    FORBIDDEN = 3002
    ROLE_NOT_ALLOWED = 3003
    LISTING_NOT_VERIFIED = 3004
    BROADCAST_NOT_RECEIVED = 3005
    NO_BROADCAST_OFFER = 3006

    RATE_LIMITED = 4001
    RECALL_WINDOW_PASSED = 4002
    NOT_YOUR_MESSAGE = 4003
    NOT_RECALLABLE = 4004
    CLIENT_ID_REUSED = 4005
    OFF_PLATFORM_BLOCKED = 4006
    PRESEND_BLOCKED = 4007
    BLOCKED = 4008
    BROADCAST_LIMITED = 4009
    EDIT_CONFLICT = 4010
    BROADCAST_OFFER_EXPIRED = 4011
    EVIDENCE_TOO_LARGE = 4012

    INTERNAL = 5001
    UNAVAILABLE = 5002
    OVERLOADED = 5003


ERROR_TEXT: dict[ErrorCode, str] = {
    ErrorCode.MALFORMED: "the frame is not valid msgpack",
    ErrorCode.NOT_A_MAP: "a frame must be a msgpack map with a 'type' key",
    ErrorCode.UNKNOWN_TYPE: "unknown frame type",
    ErrorCode.INVALID_FIELDS: "missing or invalid fields",
    ErrorCode.TOO_LARGE: "the frame is larger than the server accepts",
    ErrorCode.TEXT_FRAME: "frames must be binary msgpack, not text",
    ErrorCode.MEDIA_UNSUPPORTED: "the upload is not a JPEG, PNG, WebP or GIF picture that decodes",
    ErrorCode.MEDIA_TOO_LARGE: "the upload is larger than the hub accepts",
    ErrorCode.MEDIA_TOO_MANY_PIXELS: "the picture has too many pixels to decode",
    ErrorCode.NOT_AUTHENTICATED: "send an 'auth' frame first",
    ErrorCode.TOKEN_INVALID: "the token is not valid",
    ErrorCode.TOKEN_EXPIRED: "the token has expired",
    ErrorCode.ALREADY_AUTHENTICATED: "this connection is already authenticated",
    ErrorCode.NOT_FOUND: "no such conversation or message",
    ErrorCode.FORBIDDEN: "you are not a participant of this conversation",
    ErrorCode.ROLE_NOT_ALLOWED: "your role may not do this",
    ErrorCode.LISTING_NOT_VERIFIED: "the marketplace has not confirmed this listing's price; ask the shop for an offer",
    ErrorCode.BROADCAST_NOT_RECEIVED: "this broadcast did not reach you in this conversation",
    ErrorCode.NO_BROADCAST_OFFER: "this broadcast carries no price offer",
    ErrorCode.RATE_LIMITED: "you are sending too fast; retry shortly",
    ErrorCode.RECALL_WINDOW_PASSED: "the message is too old to recall",
    ErrorCode.NOT_YOUR_MESSAGE: "only the sender may recall a message",
    ErrorCode.NOT_RECALLABLE: "this message cannot be recalled",
    ErrorCode.CLIENT_ID_REUSED: "this client message id was used for a different message",
    ErrorCode.OFF_PLATFORM_BLOCKED: "contact details or payment outside the platform are not allowed in messages",
    ErrorCode.PRESEND_BLOCKED: "the marketplace does not allow this message",
    ErrorCode.BLOCKED: "messages between this buyer and this shop are blocked",
    ErrorCode.BROADCAST_LIMITED: "the shop has sent as many broadcasts as it may for now; retry later",
    ErrorCode.EDIT_CONFLICT: "another agent saved this buyer's notes since you read them",
    ErrorCode.BROADCAST_OFFER_EXPIRED: "the broadcast's price offer has expired",
    ErrorCode.EVIDENCE_TOO_LARGE: "the evidence package is too large for a websocket frame; use the server API",
    ErrorCode.INTERNAL: "internal server error; retrying is safe",
    ErrorCode.UNAVAILABLE: "a backend is unavailable; retry shortly",
    ErrorCode.OVERLOADED: "the server is over capacity; send again after retry_after_ms",
}


class CloseCode(IntEnum):
    """Application close codes (RFC 6455 private range 4000–4999)."""

    AUTH_FAILED = 4001
    TOKEN_EXPIRED = 4002
    TOO_MANY_ERRORS = 4003
    AUTH_TIMEOUT = 4004

    SLOW_CONSUMER = 4500
    OVERLOADED = 4501
    BACKEND_UNAVAILABLE = 4502


def should_reconnect(code: int) -> bool:
    """Tell a client whether a close code invites an automatic reconnect."""
    return code in (1001, 1006, 1011, 1012, 1013) or 4500 <= code <= 4999


class ProtocolError(Exception):
    """A request that gets an ``error`` frame; the connection survives it."""

    def __init__(self, code: int, message: str | None = None, details: object = None) -> None:
        text = message
        if text is None:
            try:
                text = ERROR_TEXT[ErrorCode(code)]
            except ValueError:
                text = "error"
        super().__init__(text)
        self.code = int(code)
        self.message = text
        self.details = details
