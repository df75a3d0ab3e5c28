"""Hub nodes as real processes, for crash, signal and multi-node tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .conftest import SECRET


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HubProcess:
    def __init__(self, db: Path, env: dict[str, str] | None = None) -> None:
        self.db = db
        self.port = free_port()
        self.env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "DATABASE_URL": f"sqlite:///{db}",
            "PAYMENTS_DATABASE_URL": f"sqlite:///{db.with_name('payments.db')}",
            "API_PORT": str(free_port()),
            "TOKEN_SECRET": SECRET,
            "PIN_PEPPER": "pin-pepper-for-tests-0123456789",
            "RATE_PER_SECOND": "10000",
            "RATE_BURST": "10000",
            "LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def start(self) -> HubProcess:
        self.log = self.db.with_suffix(f".{self.port}.log")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "chat", "serve"], env=self.env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited: {self.log.read_text()}")
            try:
                await asyncio.to_thread(self._get, "/readyz")
                return self
            except OSError:
                await asyncio.sleep(0.05)
        raise TimeoutError("hub did not become ready")

    def _get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as resp:
            data: bytes = resp.read()
            return data

    def kill(self) -> None:
        """kill -9: no cleanup, no flush, nothing."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(15)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
