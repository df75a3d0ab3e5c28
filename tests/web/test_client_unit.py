"""The web client's node unit tests (web-client/test/: resume cursors, close codes), run as part of pytest."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed (the web client's unit tests run under `node --test`)")
def test_web_client_node_unit_tests() -> None:
    assert NODE is not None
    run = subprocess.run(
        [NODE, "--test", "web-client/test/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"`node --test web-client/test/` failed (exit {run.returncode}):\n{output[-20000:]}"
    assert "# fail 0" in output, output[-20000:]
