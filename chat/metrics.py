"""Prometheus metrics of one hub node (served at ``GET /metrics``)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge("chat_connections", "Open websocket connections", registry=r)
        self.frames_in = Counter("chat_frames_in", "Frames received, by type", ["type"], registry=r)
        self._frames_in: dict[str, Any] = {}
        self.frames_out = Counter("chat_frames_out", "Frames sent", registry=r)
        self.errors = Counter("chat_errors", "Error frames sent, by code", ["code"], registry=r)
        self.closes = Counter("chat_closes", "Connections closed by the server, by code", ["code"], registry=r)
        self.messages = Counter("chat_messages_stored", "Messages committed to the store", registry=r)
        self.delivery = Histogram(
            "chat_delivery_seconds",
            "From a message arriving at the hub to its frame being written to a recipient",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.loop_lag = Histogram(
            "chat_loop_lag_seconds",
            "How late the event loop woke a task that slept (every connection of the node waits this long)",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.gc_pause = Histogram(
            "chat_gc_seconds",
            "Garbage collector passes, by generation (every thread of the node waits this long)",
            ["generation"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5),
            registry=r,
        )
        self.gap_fills = Counter("chat_gap_fills", "Live deliveries that had to fill a gap from the store", registry=r)
        self.slow_consumers = Counter("chat_slow_consumers", "Connections closed for not reading", registry=r)

    def frame_in(self, kind: str) -> None:
        """Count a received frame; label children are bound once per type (a lookup with a
        lock per frame otherwise). Callers pass only known types, or ``unknown``."""
        child = self._frames_in.get(kind)
        if child is None:
            child = self._frames_in[kind] = self.frames_in.labels(type=kind)
        child.inc()

    def render(self) -> bytes:
        data: bytes = generate_latest(self.registry)
        return data
