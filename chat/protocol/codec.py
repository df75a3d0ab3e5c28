"""msgpack ⇄ frames, with every failure mapped to a typed :class:`ProtocolError`.

Pure functions, no I/O: the server calls :func:`decode` on each binary frame
and :func:`encode` on each reply, and tests call them with bytes alone.
"""

from __future__ import annotations

from typing import Any, get_args

import msgpack
from pydantic import TypeAdapter, ValidationError

from .errors import ErrorCode, ProtocolError
from .frames import CLIENT_FRAME_TYPES, ClientFrame

_client_adapter: TypeAdapter[Any] = TypeAdapter(ClientFrame)
CLIENT_TYPES: frozenset[str] = frozenset(
    name for m in CLIENT_FRAME_TYPES for name in get_args(m.model_fields["type"].annotation)
)

_packer_options: dict[str, Any] = {"use_bin_type": True}
_unpacker_options: dict[str, Any] = {
    "raw": False,
    "strict_map_key": True,
    # Stop hostile nesting and size bombs before they allocate anything.
    "max_str_len": 1 << 20,
    "max_bin_len": 1 << 20,
    "max_array_len": 10_000,
    "max_map_len": 10_000,
    "max_ext_len": 0,
}


def encode(frame: dict[str, Any]) -> bytes:
    """Pack one outgoing frame; callers build plain dicts on the hot path."""
    data: bytes = msgpack.packb(frame, **_packer_options)
    return data


def request_id(obj: object) -> int | None:
    """The ``id`` of a raw request, if it has a usable one, so errors can answer it."""
    if isinstance(obj, dict):
        rid = obj.get("id")
        if isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid <= 2**53:
            return rid
    return None


def unpack(data: bytes) -> Any:
    """Unpack bytes (any msgpack value), or raise MALFORMED.

    Non-string map keys, ext types and invalid UTF-8 in a ``str`` are all MALFORMED."""
    try:
        obj = msgpack.unpackb(data, **_unpacker_options)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, TypeError) as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"the frame is not valid msgpack ({type(exc).__name__})") from exc
    except Exception as exc:  # msgpack raises a few exotic types on hostile input
        raise ProtocolError(ErrorCode.MALFORMED) from exc
    return obj


def validate(obj: Any) -> Any:
    """Turn an unpacked value into its frame model, or raise NOT_A_MAP / UNKNOWN_TYPE /
    INVALID_FIELDS (read :func:`request_id` first: each of them answers the request)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise ProtocolError(ErrorCode.NOT_A_MAP)
    if obj["type"] not in CLIENT_TYPES:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown frame type {obj['type'][:40]!r}")
    try:
        return _client_adapter.validate_python(obj)
    except ValidationError as exc:
        fields = [
            {"field": ".".join(str(p) for p in err["loc"][1:]), "problem": err["msg"]}
            for err in exc.errors(include_url=False, include_input=False)[:10]
        ]
        raise ProtocolError(ErrorCode.INVALID_FIELDS, details=fields) from exc


def decode(data: bytes) -> Any:
    """Bytes to a validated client frame model."""
    return validate(unpack(data))
