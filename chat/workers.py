"""``serve --workers N``: N hub processes on one port, under one supervisor.

One event loop uses one core. Instead of one process accepting for the others,
every worker binds the same host and port with ``SO_REUSEPORT`` and the kernel
spreads new connections over them. A worker is therefore an ordinary hub node
(its own node id, presence heartbeats and broker subscriptions; ``/healthz``,
``/readyz`` and the server API answer from whichever worker takes the
connection), and a worker that dies costs only its own connections, which
reconnect and resume on any worker.

Workers are separate nodes, so they need what separate nodes need: Redis to
route between them, and a store every one of them can write. The SQLite store
is built around one writer per file (group commit from one thread); several
processes would queue on its file lock instead of adding throughput, so it is
refused here and PostgreSQL is required.

The supervisor (the parent) forwards SIGTERM and SIGINT so every worker closes
its connections with 1001, restarts a worker that dies on its own after a
growing delay, and gives up with exit status 1 when one keeps dying, so the
process manager above it sees the failure instead of a restart loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .config import Config

log = logging.getLogger(__name__)

SHARED_STORES = ("postgresql://", "postgres://")


def refusal(config: Config, workers: int) -> str | None:
    """Why ``workers`` processes cannot serve with ``config`` (None: they can)."""
    if workers < 1:
        return f"WORKERS={workers}: at least one worker is needed"
    if workers == 1:
        return None
    missing = []
    if not config.redis_url:
        missing.append("REDIS_URL is empty (the in-memory broker cannot route between processes)")
    if not config.database_url.startswith(SHARED_STORES):
        missing.append(f"DATABASE_URL is {config.database_url} (the SQLite store has one writer per file; "
                       "use postgresql://…)")
    if missing:
        return "WORKERS>1 needs REDIS_URL and a DATABASE_URL every worker can share: " + "; ".join(missing)
    if config.port == 0 or (config.payments_enabled and config.api_port == 0):
        return "WORKERS>1 needs fixed ports: with PORT=0 or API_PORT=0 every worker would get ports of its own"
    return None


@dataclass(frozen=True)
class Policy:
    """When to restart a worker that died, and when to give up on it."""

    first_delay: float = 0.25
    """Seconds before the first restart; doubled for every further death within ``window``."""
    max_delay: float = 10.0
    deaths: int = 5
    """This many deaths of one worker within ``window`` seconds stop the whole supervisor."""
    window: float = 60.0
    stop_timeout: float = 20.0
    """Seconds a stopping worker gets to close its connections before it is killed."""


def describe(returncode: int) -> str:
    if returncode >= 0:
        return f"exited with {returncode}"
    try:
        return f"was killed by {signal.Signals(-returncode).name}"
    except ValueError:  # a signal without a name (real-time signals)
        return f"was killed by signal {-returncode}"


class Supervisor:
    """Keeps ``count`` copies of ``command`` running until told to stop."""

    def __init__(self, count: int, command: Sequence[str], env: Mapping[str, str], policy: Policy | None = None
                 ) -> None:
        self.count = count
        self.command = list(command)
        self.env = dict(env)
        self.policy = policy or Policy()
        self.failed = False
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._stopping = asyncio.Event()
        self._signal = signal.SIGTERM
        self._killer: asyncio.TimerHandle | None = None

    def worker_env(self, slot: int) -> dict[str, str]:
        """A worker is a node of its own: a set ``NODE_ID`` gets the worker's number appended
        (an empty one already defaults to host:pid, which differs per worker)."""
        env = {**self.env, "WORKERS": "1"}
        if env.get("NODE_ID"):
            env["NODE_ID"] = f"{env['NODE_ID']}.{slot}"
        return env

    async def run(self) -> int:
        """Start every worker, keep them running, and return the exit status."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop, sig)
        try:
            await asyncio.gather(*(self._keep(slot) for slot in range(self.count)))
        finally:
            if self._killer is not None:
                self._killer.cancel()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return 1 if self.failed else 0

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Forward ``sig`` to every worker (each closes its connections with 1001) and restart none."""
        if not self._stopping.is_set():
            log.info("stopping %d workers (%s)", len(self._procs), sig.name)
            self._killer = asyncio.get_running_loop().call_later(self.policy.stop_timeout, self._kill_all)
        self._stopping.set()
        self._signal = sig
        for proc in list(self._procs.values()):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    def _kill_all(self) -> None:
        for slot, proc in list(self._procs.items()):
            log.warning("worker %d (pid %d) did not stop within %.0f s: killing it",
                        slot, proc.pid, self.policy.stop_timeout)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    async def _keep(self, slot: int) -> None:
        policy = self.policy
        loop = asyncio.get_running_loop()
        deaths: deque[float] = deque()
        while not self._stopping.is_set():
            proc = await asyncio.create_subprocess_exec(*self.command, env=self.worker_env(slot))
            self._procs[slot] = proc
            if self._stopping.is_set():  # the signal came while this one was starting
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(self._signal)
            log.info("worker %d started (pid %d)", slot, proc.pid)
            returncode = await proc.wait()
            del self._procs[slot]
            if self._stopping.is_set():
                log.info("worker %d (pid %d) %s", slot, proc.pid, describe(returncode))
                return
            now = loop.time()
            deaths.append(now)
            while now - deaths[0] > policy.window:
                deaths.popleft()
            if len(deaths) >= policy.deaths:
                log.error("worker %d (pid %d) %s; it died %d times within %.0f s: giving up, stopping every worker",
                          slot, proc.pid, describe(returncode), len(deaths), policy.window)
                self.failed = True
                self.stop(signal.SIGTERM)
                return
            delay = min(policy.max_delay, policy.first_delay * 2 ** (len(deaths) - 1))
            log.warning("worker %d (pid %d) %s; restarting it in %.2f s", slot, proc.pid, describe(returncode), delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)


def run_supervisor(count: int, env: Mapping[str, str] | None = None, policy: Policy | None = None) -> int:
    """Run ``count`` workers of ``python -m chat serve`` without checking the configuration."""
    command = [sys.executable, "-m", "chat", "serve", "--workers", "1", "--supervisor", str(os.getpid())]
    supervisor = Supervisor(count, command, os.environ if env is None else env, policy)
    return asyncio.run(supervisor.run())


def supervise(config: Config, workers: int) -> int:
    """``serve --workers N`` with N > 1: refuse a configuration workers cannot share, or run them."""
    problem = refusal(config, workers)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    log.info("supervisor (pid %d): %d workers on %s:%d", os.getpid(), workers, config.host, config.port)
    return run_supervisor(workers)


def stop_with_supervisor(pid: int) -> None:
    """In a worker: stop gracefully (as on SIGTERM) once the supervisor is gone, so a
    supervisor killed with -9 does not leave its workers serving the port unsupervised.

    A pidfd becomes readable when the process exits: no polling."""

    def gone() -> None:
        log.warning("the supervisor (pid %d) is gone: stopping", pid)
        os.kill(os.getpid(), signal.SIGTERM)

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        gone()
        return
    except OSError:  # a kernel without pidfds (before Linux 5.3): the process manager must stop us
        log.warning("cannot watch the supervisor (pid %d); workers outlive it if it is killed", pid)
        return
    loop = asyncio.get_running_loop()

    def exited() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        gone()

    loop.add_reader(fd, exited)
