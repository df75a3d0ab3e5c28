"""The README's configuration table and commands stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from chat.config import SETTINGS, help_text

ROOT = Path(__file__).resolve().parent.parent


def readme_table(heading: str) -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def test_readme_configuration_table_matches_settings() -> None:
    """Every setting is in the README with its real default and help text, and nothing else is."""
    rows = {r[0].strip("`"): r for r in readme_table("Configuration")}
    assert set(rows) == {s.env for s in SETTINGS}
    for s in SETTINGS:
        _, default, meaning = rows[s.env]
        assert default == (f"`{s.default}`" if s.default else "(empty)"), s.env
        assert meaning == s.help, s.env


def test_help_lists_every_setting() -> None:
    """``python -m chat --help`` documents every setting."""
    text = help_text()
    for s in SETTINGS:
        assert s.env in text


def test_readme_commands_exist_and_ci_runs_the_test_command() -> None:
    """The two README commands are executable scripts, and .ci/run calls the test one."""
    text = (ROOT / "README.md").read_text()
    commands = re.findall(r"```sh\n(\./scripts/\w+)\n```", text)
    assert commands[:2] == ["./scripts/serve", "./scripts/test"]
    for command in commands[:2]:
        path = ROOT / command
        assert path.is_file() and path.stat().st_mode & 0o111
    assert "./scripts/test" in (ROOT / ".ci" / "run").read_text()


def _tables_of(heading: str) -> list[list[list[str]]]:
    """Every table under ``### heading`` (up to the next heading), rows without the header."""
    text = (ROOT / "README.md").read_text()
    section = text.split(f"### {heading}", 1)[1].split("\n#", 1)[0]
    tables: list[list[list[str]]] = []
    current: list[str] = []
    for line in [*section.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append([[c.strip() for c in row.strip("|").split("|")] for row in current[2:]])
            current = []
    return tables


def test_readme_order_transitions_are_the_state_machine() -> None:
    """The README's transition table is exactly ``payments.escrow.ORDERS``: every transition,
    who may take it, where it leads, and nothing the code does not do."""
    from payments.escrow import ORDERS

    documented = {
        (src.strip("`"), action.strip("`"), frozenset(r.strip() for r in by.split(",")), dst.strip("`"))
        for src, action, by, dst, _ in _tables_of("An order's life")[0]
    }
    actual = {
        (state.value, action.value, frozenset(r.value for r in rule.roles), rule.target.value)
        for (state, action), rule in ORDERS.table.items()
    }
    assert documented == actual


def test_readme_deadlines_are_the_code() -> None:
    """Each waiting state's deadline field in the README is the one ``DEADLINES`` names, and
    every state the machine can wait in has one."""
    from payments.escrow import DEADLINES, ORDERS

    documented = {state.strip("`"): field.strip("`") for state, field, _, _ in _tables_of("An order's life")[1]}
    assert documented == {state.value: field for state, (field, _) in DEADLINES.items()}
    assert {state.value for state, _ in ORDERS.table} == set(documented)


def test_readme_chat_webhooks_are_the_ones_written() -> None:
    """The README's table of chat webhooks names exactly the event types the hub writes."""
    from chat.webhook_events import TYPES

    documented = {row[0].strip("`") for row in _tables_of("Webhooks")[0]}
    assert documented == set(TYPES)
