"""docs/protocol.schema.json: current with the models, and complete.

Client writers generate code from the committed file, so a stale copy would
mislead them silently. No JSON Schema validator is a dependency of this
project, so instead of validating sample frames the checks are structural:
every frame type, field and nested model of :mod:`chat.protocol.frames` is in
the schema with the right required fields, and every reference resolves.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from chat.__main__ import main
from chat.protocol import frames as f
from chat.protocol.schema import protocol_schema, render

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "protocol.schema.json"
COMMAND = "python -m chat schema > docs/protocol.schema.json"

SCHEMA = protocol_schema()
DEFS: dict[str, Any] = SCHEMA["$defs"]
MODELS = [m for m in vars(f).values()
          if isinstance(m, type) and issubclass(m, BaseModel) and m.__module__ == f.__name__ and m.__name__[0] != "_"]


def type_values(model: type[BaseModel], key: str = "type") -> tuple[str, ...]:
    return tuple(str(v) for v in typing.get_args(model.model_fields[key].annotation))


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_committed_schema_is_current() -> None:
    """The committed file is exactly what the models generate now."""
    current = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else ""
    assert current == render(SCHEMA), f"docs/protocol.schema.json is out of date: run {COMMAND}"


def test_schema_command_prints_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``schema`` prints the committed text; ``--check`` passes on it and fails, naming the fix, on anything else."""
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == render(SCHEMA)
    assert main(["schema", "--check", str(COMMITTED)]) == 0
    stale = tmp_path / "protocol.schema.json"
    stale.write_text(render(SCHEMA).replace('"msg"', '"message"'), encoding="utf-8")
    assert main(["schema", "--check", str(stale)]) == 1
    assert "python -m chat schema >" in capsys.readouterr().err
    assert main(["schema", "--check", str(tmp_path / "missing.json")]) == 1


def test_document_header() -> None:
    """One self-describing document: dialect, id, title, and how it relates to the msgpack wire format."""
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"] and SCHEMA["title"]
    assert "msgpack" in SCHEMA["description"] and "JSON" in SCHEMA["description"]
    assert SCHEMA["anyOf"] == [{"$ref": "#/$defs/ClientFrame"}, {"$ref": "#/$defs/ServerFrame"}]
    dangling = {ref for ref in refs(SCHEMA) if ref.removeprefix("#/$defs/") not in DEFS}
    assert not dangling


@pytest.mark.parametrize(("entry", "models"), [("ClientFrame", f.CLIENT_FRAME_TYPES),
                                                ("ServerFrame", f.SERVER_FRAME_TYPES)])
def test_every_frame_type_is_an_entry_point_choice(entry: str, models: tuple[type[BaseModel], ...]) -> None:
    """Each entry point picks a frame by ``type``: every type value of every model, and nothing else."""
    union = DEFS[entry]
    assert union["discriminator"]["propertyName"] == "type"
    expected = {value: f"#/$defs/{m.__name__}" for m in models for value in type_values(m)}
    assert union["discriminator"]["mapping"] == expected
    assert sorted(choice["$ref"] for choice in union["oneOf"]) == sorted({*expected.values()})


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_has_its_fields(model: type[BaseModel]) -> None:
    """Frames, nested objects and body kinds: same fields, same required ones, no others allowed."""
    schema = DEFS[model.__name__]
    assert set(schema["properties"]) == set(model.model_fields)
    required = {name for name, info in model.model_fields.items() if info.is_required()}
    if "type" in model.model_fields:
        required.add("type")  # server models default it, but it is on every frame
    assert set(schema.get("required", [])) == required
    assert schema["additionalProperties"] is False


def test_message_bodies_are_chosen_by_kind() -> None:
    """``send.body`` is one of the client body kinds, selected by its ``kind`` key."""
    body = DEFS["Send"]["properties"]["body"]
    assert body["discriminator"]["propertyName"] == "kind"
    bodies = typing.get_args(typing.get_args(f.ClientBody)[0])
    assert body["discriminator"]["mapping"] == {type_values(m, "kind")[0]: f"#/$defs/{m.__name__}" for m in bodies}
    assert set(DEFS["MessageView"]["properties"]["kind"]["enum"]) == set(type_values(f.MessageView, "kind"))
