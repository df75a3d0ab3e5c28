"""The wire protocol as one JSON Schema document, generated from the frame models.

Client writers in other languages (the browser widget, mobile apps, load-test
drivers) can generate types and validators from it instead of transcribing
``docs/protocol.md``. It is derived from :mod:`chat.protocol.frames`, never
edited by hand: ``python -m chat schema > docs/protocol.schema.json`` writes the
committed copy and a test fails when that copy falls behind the models.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue

from . import frames as f

SCHEMA_ID = "urn:tradechat:protocol:v1"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "tradechat wire protocol v1"
DESCRIPTION = (
    "Every frame of the chat hub's wire protocol, generated from chat/protocol/frames.py "
    "(python -m chat schema). On the wire each frame is one binary websocket message holding "
    "a msgpack map; this schema describes those maps in JSON terms for readability and tooling "
    "(msgpack str = string, int = integer, nil = null, map = object; an integer field never "
    "takes a float, even 1.0). Validate frames a client sends against #/$defs/ClientFrame and "
    "frames the server sends against #/$defs/ServerFrame; both select the frame by its type key. "
    "Server frames may gain optional fields and types: ignore what you do not know. "
    "Meaning, order of replies and delivery rules: docs/protocol.md."
)


class _Generator(GenerateJsonSchema):
    """Pydantic's generator without the per-field titles it derives from field names ("Conv" for ``conv``)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def protocol_schema() -> dict[str, Any]:
    """The whole protocol: ``$defs`` for every frame and nested object, plus the two entry points.

    ``type`` is made required in every frame: server models default it (so the hub
    can build them without repeating it), but every frame on the wire carries it,
    and the discriminator needs it.
    """
    entries: list[tuple[str, Any, TypeAdapter[Any]]] = [
        ("ClientFrame", "validation", TypeAdapter(f.ClientFrame)),
        ("ServerFrame", "validation", TypeAdapter(f.ServerFrame)),
    ]
    roots, common = TypeAdapter.json_schemas(entries, schema_generator=_Generator)
    defs: dict[str, JsonSchemaValue] = dict(common.get("$defs", {}))
    for model in (*f.CLIENT_FRAME_TYPES, *f.SERVER_FRAME_TYPES):
        required = defs[model.__name__].setdefault("required", [])
        if "type" not in required:
            required.insert(0, "type")
    for (name, _mode), schema in roots.items():
        if name in defs:  # a programming error in frames.py, caught by the schema test
            raise ValueError(f"a model is named like the entry point {name}")
        defs[name] = schema
    return {
        "$schema": DIALECT,
        "$id": SCHEMA_ID,
        "title": TITLE,
        "description": DESCRIPTION,
        "anyOf": [{"$ref": "#/$defs/ClientFrame"}, {"$ref": "#/$defs/ServerFrame"}],
        "$defs": defs,
    }


def render(schema: dict[str, Any]) -> str:
    """The committed text: sorted keys and 2-space indent, so regenerating gives byte-identical output."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"  # ASCII: safe to redirect in any locale
