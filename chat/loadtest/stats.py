"""Latency samples, counters and their merge across worker processes.

Samples are kept exactly (microseconds in an ``array``) up to a cap, then by
reservoir sampling, so percentiles are exact for any run a laptop can drive and
unbiased beyond. Everything here pickles, so workers can ship it to the parent.
"""

from __future__ import annotations

import random
import resource
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

CAP = 2_000_000


def percentile(sorted_values: array[int] | list[int], q: float) -> int:
    if not sorted_values:
        return 0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return int(sorted_values[index])


@dataclass
class Samples:
    """Latencies of one frame type, in microseconds."""

    values: array[int] = field(default_factory=lambda: array("q"))
    count: int = 0
    max: int = 0

    def add(self, micros: int) -> None:
        self.count += 1
        if micros > self.max:
            self.max = micros
        if len(self.values) < CAP:
            self.values.append(micros)
        else:
            slot = random.randrange(self.count)
            if slot < CAP:
                self.values[slot] = micros

    def merge(self, other: Samples) -> None:
        self.count += other.count
        self.max = max(self.max, other.max)
        room = CAP - len(self.values)
        self.values.extend(other.values[:room])

    def summary(self, seconds: float) -> dict[str, Any]:
        ordered = sorted(self.values)
        return {
            "count": self.count,
            "rate": round(self.count / seconds, 1) if seconds > 0 else 0.0,
            "p50_ms": percentile(ordered, 0.50) / 1000,
            "p95_ms": percentile(ordered, 0.95) / 1000,
            "p99_ms": percentile(ordered, 0.99) / 1000,
            "max_ms": self.max / 1000,
        }


@dataclass
class Window:
    """What happened in one progress interval (sent to the parent, then dropped)."""

    sent: int = 0
    delivered: int = 0
    errors: int = 0
    latencies: list[int] = field(default_factory=list)

    def merge(self, other: Window) -> None:
        self.sent += other.sent
        self.delivered += other.delivered
        self.errors += other.errors
        self.latencies.extend(other.latencies)


@dataclass
class Results:
    """Everything one worker measured; :meth:`merge` combines workers."""

    latency: dict[str, Samples] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    correctness: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    measured_seconds: float = 0.0
    sched_lag: Samples = field(default_factory=Samples)
    peak_connections: int = 0
    procs: int = 1
    hub_cpu_seconds: float | None = None

    def sample(self, kind: str, micros: int) -> None:
        samples = self.latency.get(kind)
        if samples is None:
            samples = self.latency[kind] = Samples()
        samples.add(micros)

    def error(self, kind: str, example: str | None = None) -> None:
        self.errors[kind] += 1
        if example and len(self.examples) < 20:
            self.examples.append(f"{kind}: {example}")

    def violation(self, kind: str, example: str) -> None:
        self.correctness[kind] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{kind}: {example}")

    def merge(self, other: Results) -> None:
        for kind, samples in other.latency.items():
            mine = self.latency.get(kind)
            if mine is None:
                self.latency[kind] = samples
            else:
                mine.merge(samples)
        self.counts.update(other.counts)
        self.errors.update(other.errors)
        self.correctness.update(other.correctness)
        self.examples.extend(other.examples[: max(0, 20 - len(self.examples))])
        self.cpu_seconds += other.cpu_seconds
        self.wall_seconds = max(self.wall_seconds, other.wall_seconds)
        self.measured_seconds = max(self.measured_seconds, other.measured_seconds)
        self.sched_lag.merge(other.sched_lag)
        self.peak_connections += other.peak_connections
        if other.hub_cpu_seconds is not None:
            self.hub_cpu_seconds = max(self.hub_cpu_seconds or 0.0, other.hub_cpu_seconds)


def cpu_seconds() -> float:
    """User plus system CPU of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def proc_cpu_seconds(pid: int) -> float:
    """User plus system CPU of another process (Linux ``/proc``)."""
    import os

    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0
