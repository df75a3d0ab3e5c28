"""docs/protocol.md against the protocol models: every frame, field, error and close code.

The document is parsed into heading sections and markdown tables; the checks
read the tables of the right section, so a name mentioned in passing elsewhere
does not count as documented.
"""

from __future__ import annotations

import json
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import BaseModel

from chat.protocol import frames as f
from chat.protocol.errors import CloseCode, ErrorCode, should_reconnect

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

CLIENT_SECTION = "Client frames"
SERVER_SECTION = "Server frames"
NESTED_SECTION = "Nested objects"
KINDS_SECTION = "Message kinds"
ERRORS_SECTION = "Error codes"
CLOSE_SECTION = "Close codes"

BODY_MODELS: tuple[type[BaseModel], ...] = (f.TextBody, f.ImageBody, f.ProductBody)
NESTED_MODELS: tuple[type[BaseModel], ...] = (f.ConversationView, f.Listing)


# --- a small markdown reader ------------------------------------------------


@dataclass
class Section:
    level: int
    title: str
    lines: list[str] = field(default_factory=list)
    """The section's own lines, up to the next heading of any level (code fences excluded)."""
    code: list[tuple[str, str]] = field(default_factory=list)
    """Fenced code blocks in the section: (language, text)."""
    children: list[Section] = field(default_factory=list)


def parse(text: str) -> list[Section]:
    """Split markdown into a tree of heading sections; headings inside code fences are text."""
    root = Section(0, "")
    stack = [root]
    fence: tuple[str, list[str]] | None = None
    for line in text.splitlines():
        if fence is not None:
            if line.startswith("```"):
                stack[-1].code.append((fence[0], "\n".join(fence[1])))
                fence = None
            else:
                fence[1].append(line)
            continue
        if line.startswith("```"):
            fence = (line[3:].strip(), [])
            continue
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*$", line)
        if heading:
            level = len(heading.group(1))
            while stack[-1].level >= level:
                stack.pop()
            section = Section(level, heading.group(2))
            stack[-1].children.append(section)
            stack.append(section)
            continue
        stack[-1].lines.append(line)
    assert fence is None, "unclosed code fence in the protocol document"
    return root.children


def walk(sections: list[Section]) -> list[Section]:
    """Every section of a tree, depth first."""
    out: list[Section] = []
    for section in sections:
        out.append(section)
        out.extend(walk(section.children))
    return out


def split_row(line: str) -> list[str]:
    """Cells of one table row, honouring escaped pipes."""
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [cell.replace("\\|", "|").strip() for cell in re.split(r"(?<!\\)\|", inner)]


def tables(section: Section) -> list[tuple[list[str], list[list[str]]]]:
    """Every table directly in a section, as (header cells, body rows)."""
    found: list[tuple[list[str], list[list[str]]]] = []
    block: list[str] = []
    for line in [*section.lines, ""]:
        if line.lstrip().startswith("|"):
            block.append(line)
            continue
        if len(block) >= 2 and re.fullmatch(r"[\s|:-]+", block[1]):
            found.append((split_row(block[0]), [split_row(row) for row in block[2:]]))
        block = []
    return found


def top(name: str) -> Section:
    """The level-2 section whose title starts with ``name``."""
    matches = [s for s in walk(parse(DOC.read_text(encoding="utf-8"))) if s.level == 2 and s.title.startswith(name)]
    assert len(matches) == 1, f"expected one '## {name}…' section, found {len(matches)}"
    return matches[0]


def first_code(title: str) -> str | None:
    """The first backticked word of a heading: the frame type, kind or object it documents."""
    match = re.search(r"`([^`]+)`", title)
    return match.group(1) if match else None


def subsection(parent: Section, name: str) -> Section:
    """The one level-3 section of ``parent`` whose heading starts with `name`."""
    matches = [s for s in parent.children if s.level == 3 and first_code(s.title) == name]
    assert len(matches) == 1, f"'{parent.title}' needs exactly one '### `{name}`' section, found {len(matches)}"
    return matches[0]


def field_table(section: Section) -> list[list[str]]:
    """Rows of the section's table whose first column is 'Field'."""
    for header, rows in tables(section):
        if header and header[0].lower() == "field":
            return rows
    raise AssertionError(f"section '{section.title}' has no field table")


def cell_name(cell: str) -> str:
    match = re.fullmatch(r"`([A-Za-z_][A-Za-z0-9_]*)`", cell)
    assert match, f"a field cell must be one backticked name, got {cell!r}"
    return match.group(1)


def type_values(model: type[BaseModel]) -> tuple[str, ...]:
    """The ``type`` values a frame model accepts (one model may serve several, e.g. confirm/extend)."""
    return tuple(str(v) for v in typing.get_args(model.model_fields["type"].annotation))


def type_value(model: type[BaseModel]) -> str:
    return type_values(model)[0]


def frame_section(parent: str, model: type[BaseModel]) -> Section:
    """The section of a frame model: headed by its first type value and naming all of them."""
    section = subsection(top(parent), type_value(model))
    for value in type_values(model):
        assert f"`{value}`" in section.title, f"'{section.title}' should name the type `{value}`"
    return section


def kind_value(model: type[BaseModel]) -> str:
    (value,) = typing.get_args(model.model_fields["kind"].annotation)
    return str(value)


def documented(section: Section, model: type[BaseModel]) -> None:
    """The section's field table names exactly the model's fields, each once."""
    rows = field_table(section)
    names = [cell_name(row[0]) for row in rows]
    assert len(names) == len(set(names)), f"{model.__name__}: a field is listed twice: {names}"
    missing = set(model.model_fields) - set(names)
    extra = set(names) - set(model.model_fields)
    assert not missing, f"{model.__name__}: fields missing from the doc table: {sorted(missing)}"
    assert not extra, f"{model.__name__}: doc table names fields the model lacks: {sorted(extra)}"


def example(section: Section) -> object:
    blocks = [text for lang, text in section.code if lang == "json"]
    assert blocks, f"section '{section.title}' has no JSON example"
    return json.loads(blocks[0])


def code_rows(name: str) -> dict[int, list[str]]:
    """Rows of the code table of a section, keyed by the integer in the first column."""
    section = top(name)
    found = [rows for header, rows in tables(section) if header and header[0].lower() == "code"]
    assert len(found) == 1, f"'{name}' needs exactly one table whose first column is 'Code'"
    out: dict[int, list[str]] = {}
    for row in found[0]:
        assert row[0].isdigit(), f"'{name}': code cell {row[0]!r} is not a number"
        assert int(row[0]) not in out, f"'{name}': code {row[0]} is listed twice"
        out[int(row[0])] = row
    return out


# --- frames -------------------------------------------------------------------


@pytest.mark.parametrize("model", f.CLIENT_FRAME_TYPES, ids=lambda m: m.__name__)
def test_client_frame_has_section_and_exact_field_table(model: type[BaseModel]) -> None:
    """Each client frame has a section named by its type with a table of exactly its fields."""
    documented(frame_section(CLIENT_SECTION, model), model)


@pytest.mark.parametrize("model", f.CLIENT_FRAME_TYPES, ids=lambda m: m.__name__)
def test_client_frame_required_column_matches_model(model: type[BaseModel]) -> None:
    """The Required column of a client frame says yes exactly for the model's required fields."""
    section = frame_section(CLIENT_SECTION, model)
    header = next(h for h, _ in tables(section) if h and h[0].lower() == "field")
    column = [c.lower() for c in header].index("required")
    for row in field_table(section):
        name = cell_name(row[0])
        said = row[column].lower().startswith("yes")
        assert said == model.model_fields[name].is_required(), f"{model.__name__}.{name}: Required says {row[column]!r}"


@pytest.mark.parametrize("model", f.SERVER_FRAME_TYPES, ids=lambda m: m.__name__)
def test_server_frame_has_section_and_exact_field_table(model: type[BaseModel]) -> None:
    """Each server frame has a section named by its type with a table of exactly its fields."""
    documented(frame_section(SERVER_SECTION, model), model)


@pytest.mark.parametrize("model", NESTED_MODELS, ids=lambda m: m.__name__)
def test_nested_object_has_section_and_exact_field_table(model: type[BaseModel]) -> None:
    """ConversationView and Listing each have a section with a table of exactly their fields."""
    documented(subsection(top(NESTED_SECTION), model.__name__), model)


def test_message_view_is_the_msg_section() -> None:
    """MessageView is documented as the msg frame, and the nested objects point to it."""
    assert "MessageView" in subsection(top(SERVER_SECTION), "msg").title
    nested = [s for s in top(NESTED_SECTION).children if "MessageView" in s.title]
    assert nested, "the nested objects section should name MessageView"


@pytest.mark.parametrize("model", BODY_MODELS, ids=lambda m: m.__name__)
def test_message_body_has_section_and_exact_field_table(model: type[BaseModel]) -> None:
    """Each body a client may send has a section named by its kind with a table of exactly its fields."""
    documented(subsection(top(KINDS_SECTION), kind_value(model)), model)


def test_every_message_kind_has_a_section() -> None:
    """Every kind a msg may carry has its own section under Message kinds."""
    kinds = typing.get_args(f.MessageView.model_fields["kind"].annotation)
    section = top(KINDS_SECTION)
    for kind in kinds:
        subsection(section, kind)


def test_no_frame_section_without_a_model() -> None:
    """No frame section documents a type the models do not define."""
    for name, models in ((CLIENT_SECTION, f.CLIENT_FRAME_TYPES), (SERVER_SECTION, f.SERVER_FRAME_TYPES)):
        known = {v for m in models for v in type_values(m)}
        headed = {first_code(s.title) for s in top(name).children if s.level == 3} - {None}
        assert headed <= known, f"'{name}' documents unknown types: {sorted(str(h) for h in headed - known)}"


# --- examples -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("parent", "name", "model"),
    [(CLIENT_SECTION, type_value(m), m) for m in f.CLIENT_FRAME_TYPES]
    + [(SERVER_SECTION, type_value(m), m) for m in f.SERVER_FRAME_TYPES]
    + [(NESTED_SECTION, m.__name__, m) for m in NESTED_MODELS]
    + [(KINDS_SECTION, kind_value(m), m) for m in BODY_MODELS],
    ids=lambda v: v if isinstance(v, str) else getattr(v, "__name__", str(v)),
)
def test_examples_validate_against_the_model(parent: str, name: str, model: type[BaseModel]) -> None:
    """The first JSON example of each section is a valid instance of its model."""
    model.model_validate(example(subsection(top(parent), name)))


# --- codes --------------------------------------------------------------------


def test_error_table_lists_every_error_code() -> None:
    """Every ErrorCode appears in the error table with its number and name, and nothing else does."""
    rows = code_rows(ERRORS_SECTION)
    assert set(rows) == {int(c) for c in ErrorCode}, f"error table codes differ: {sorted(set(rows) ^ set(ErrorCode))}"
    for code in ErrorCode:
        assert rows[code][1] == f"`{code.name}`", f"error {int(code)} should be named `{code.name}`"
        assert all(cell for cell in rows[code][2:4]), f"error {int(code)} needs a meaning and an action"


def test_close_table_lists_every_close_code() -> None:
    """Every CloseCode appears in the close table with its number and name, plus 1001 and 1011."""
    rows = code_rows(CLOSE_SECTION)
    for code in CloseCode:
        assert code in rows, f"close code {int(code)} ({code.name}) is missing"
        assert rows[code][1] == f"`{code.name}`", f"close code {int(code)} should be named `{code.name}`"
    assert {1001, 1011} <= set(rows)
    private = {c for c in rows if 4000 <= c <= 4999}
    assert private <= {int(c) for c in CloseCode}, f"unknown application close codes: {sorted(private)}"


def test_close_table_reconnect_column_matches_should_reconnect() -> None:
    """The Reconnect column says yes exactly where should_reconnect() does."""
    header = next(h for h, _ in tables(top(CLOSE_SECTION)) if h and h[0].lower() == "code")
    column = next(i for i, c in enumerate(header) if c.lower().startswith("reconnect"))
    for code, row in code_rows(CLOSE_SECTION).items():
        answer = row[column].lower()
        assert answer.startswith(("yes", "no")), f"close {code}: Reconnect must start with yes or no"
        assert answer.startswith("yes") == should_reconnect(code), f"close {code}: {row[column]!r}"


# --- the checker itself ---------------------------------------------------------


def test_parser_reads_tables_not_prose() -> None:
    """A field named only in prose or code is not counted; a table row is."""
    text = (
        "## Client frames\n\n### `ping` — x\n\n`id` and `type` are mentioned here.\n\n"
        "```\n| `id` | no |\n```\n\n| Field | Type | Required | Meaning |\n| --- | --- | --- | --- |\n"
        "| `type` | \"ping\" | yes | t |\n"
    )
    (client,) = parse(text)
    rows = field_table(subsection(client, "ping"))
    assert [cell_name(r[0]) for r in rows] == ["type"]
    with pytest.raises(AssertionError, match="missing"):
        documented(subsection(client, "ping"), f.Ping)
