"""A PostgreSQL server of the test's own, on a free loopback port, that it may restart.

Restarting the shared server would break every other user of it; this one lives in a
temporary directory, runs as the ``postgres`` system user (the server refuses to run as
root) and is removed at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .procs import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} not found: install Debian's postgresql (.ci/run does)")
    return found[-1]


class PostgresInstance:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pg-instance-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresInstance:
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self._ctl("start")
        return self

    def _ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-t", "60",
                  "-l", str(self.dir / "server.log"), action, *(["-m", "fast"] if action != "start" else []))

    def stop(self) -> None:
        self._ctl("stop")

    def restart_after(self, seconds: float) -> None:
        """Stop now (fast: connections are cut), stay down ``seconds``, start again."""
        self.stop()
        time.sleep(seconds)
        self._ctl("start")

    def remove(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
