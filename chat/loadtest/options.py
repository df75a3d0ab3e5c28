"""What a load run does: population, rates, behaviour mix, limits."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields, replace
from typing import Any

DEV_SECRET = "dev-secret-change-me-please-0123456789"

MIXES: dict[str, dict[str, Any]] = {
    # Buyers and agents as they behave: typing before sending, reading replies after
    # a pause, connections dropping and resuming, buyers leaving and new ones arriving.
    "chat": {"typing": 0.5, "read": 0.5, "think": (0.5, 2.0), "read_delay": (0.3, 1.5),
             "churn": 0.01, "buyer_lifetime": 60.0},
    # Text messages only, sent the moment they arrive: what the relay comparison uses.
    "messages": {"typing": 0.0, "read": 0.0, "think": (0.0, 0.0), "read_delay": (0.0, 0.0),
                 "churn": 0.0, "buyer_lifetime": 0.0},
}


@dataclass
class Options:
    urls: list[str] = field(default_factory=lambda: ["ws://127.0.0.1:8765/ws"])
    target: str = "hub"
    """``hub`` (the chat protocol) or ``relay`` (a bare relay that forwards frames to a peer)."""
    secret: str = DEV_SECRET
    duration: float = 30.0
    warmup: float = 2.0
    """Seconds after every connection is up before figures count (the run continues for ``duration``)."""
    shops: int = 50
    agents_per_shop: int = 2
    buyers: int = 500
    listings: int = 20
    ramp: float = 1000.0
    """Connections opened per second at the start."""
    connect_concurrency: int = 200
    rate: float = 200.0
    """Open model: messages per second over the whole population (Poisson arrivals)."""
    window: int = 0
    """Closed model instead: messages each side keeps in flight per conversation (0: open model)."""
    user_rate: float = 4.0
    """Sends per second per user the generator never exceeds (stay under the hub's RATE_PER_SECOND)."""
    user_burst: float = 8.0
    agent_share: float = 0.5
    mix: str = "chat"
    typing: float = 0.5
    read: float = 0.5
    think: tuple[float, float] = (0.5, 2.0)
    read_delay: tuple[float, float] = (0.3, 1.5)
    churn: float = 0.01
    """Connection drops per connection per second; each resumes with ``sync`` cursors."""
    reconnect_delay: tuple[float, float] = (0.05, 0.5)
    buyer_lifetime: float = 60.0
    """Mean seconds a buyer stays before leaving (a new buyer arrives in its place); 0: forever."""
    pay_share: float = 0.0
    """Share of conversations that pay and confirm. The hub has escrow, but the generator has no
    payment mix yet (see ``payments.py``), so only 0 is accepted."""
    text_bytes: int = 24
    placement: str = "random"
    check: bool = True
    drain: float = 5.0
    seed: int = 1
    procs: int = 1
    progress: float = 1.0
    json_path: str | None = None
    max_p99_ms: float | None = None
    max_error_rate: float | None = None
    hub_pids: list[int] = field(default_factory=list)
    """Hub processes on this machine whose CPU time to report per delivered message."""
    run_id: str = "lt"
    worker: int = 0

    def apply_mix(self, explicit: set[str]) -> Options:
        """The mix's defaults, except for settings given explicitly on the command line."""
        preset = {k: v for k, v in MIXES[self.mix].items() if k not in explicit}
        return replace(self, **preset)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _pair(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    return float(low), float(high or low)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m chat.loadtest",
        description="Simulate buyers and shop agents against hub nodes (or a bare relay); "
                    "measure delivery latency and check that nothing is lost, duplicated or reordered. "
                    "Against a hub it exercises chat: auth, open, sync (also resuming after dropped "
                    "connections), send/ack, typing and read receipts. It does not exercise the money commands "
                    "(offer, pay, ship, confirm, refund, transfer...; in the protocol, served with "
                    "PAYMENTS=on), nor history, recall, assign or the other requests.",
    )
    d = Options()
    p.add_argument("--url", dest="urls", action="append", metavar="URL",
                   help="hub node websocket URL; repeat for several nodes (default ws://127.0.0.1:8765/ws)")
    p.add_argument("--target", choices=["hub", "relay"], default=d.target)
    p.add_argument("--secret", default=None, help="TOKEN_SECRET of the hub (default: $TOKEN_SECRET or the dev one)")
    p.add_argument("--duration", type=float, default=d.duration, help="seconds of load after the ramp")
    p.add_argument("--warmup", type=float, default=d.warmup, help="seconds of load before figures count")
    p.add_argument("--shops", type=int, default=d.shops)
    p.add_argument("--agents-per-shop", type=int, default=d.agents_per_shop)
    p.add_argument("--buyers", type=int, default=d.buyers, help="buyer connections held at once")
    p.add_argument("--listings", type=int, default=d.listings, help="listings per shop")
    p.add_argument("--ramp", type=float, default=d.ramp, help="connections opened per second at start")
    p.add_argument("--connect-concurrency", type=int, default=d.connect_concurrency)
    p.add_argument("--rate", type=float, default=d.rate, help="open model: messages per second in total")
    p.add_argument("--window", type=int, default=d.window,
                   help="closed model: messages in flight per side of each conversation (overrides --rate)")
    p.add_argument("--user-rate", type=float, default=d.user_rate, help="max sends per second per user")
    p.add_argument("--user-burst", type=float, default=d.user_burst)
    p.add_argument("--agent-share", type=float, default=d.agent_share, help="share of messages sent by agents")
    p.add_argument("--mix", choices=sorted(MIXES), default=d.mix, help="behaviour preset (flags below override)")
    p.add_argument("--typing", type=float, help="probability a message is preceded by a typing indicator")
    p.add_argument("--read", type=float, help="probability a received message is marked read")
    p.add_argument("--think", type=_pair, metavar="MIN,MAX", help="seconds between typing and sending")
    p.add_argument("--read-delay", type=_pair, metavar="MIN,MAX", help="seconds before marking read")
    p.add_argument("--churn", type=float, help="connection drops per connection per second (resume with sync)")
    p.add_argument("--reconnect-delay", type=_pair, metavar="MIN,MAX", default=d.reconnect_delay)
    p.add_argument("--buyer-lifetime", type=float, help="mean seconds a buyer stays (0: whole run)")
    p.add_argument("--pay-share", type=float, default=d.pay_share,
                   help="share of conversations that pay through escrow: not implemented in the generator "
                        "yet, so only 0 (the default) is accepted")
    p.add_argument("--text-bytes", type=int, default=d.text_bytes, help="text length (24 gives ~100-byte frames)")
    p.add_argument("--placement", choices=["random", "colocate", "split"], default=d.placement,
                   help="with several URLs: random node per connection; a shop and its buyers on one node; "
                        "or buyers and their shop's agents on different nodes")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the correctness checks")
    p.add_argument("--drain", type=float, default=d.drain, help="seconds to wait for in-flight deliveries at the end")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--procs", type=int, default=d.procs, help="generator worker processes (results are merged)")
    p.add_argument("--progress", type=float, default=d.progress, help="seconds between progress lines (0: quiet)")
    p.add_argument("--json", dest="json_path", help="write the final report here as JSON")
    p.add_argument("--hub-pid", dest="hub_pids", type=int, action="append",
                   help="a hub process on this machine: report its CPU per delivered message (repeatable)")
    p.add_argument("--max-p99-ms", type=float, help="fail (exit 1) when msg delivery p99 exceeds this")
    p.add_argument("--max-error-rate", type=float, help="fail (exit 1) when errors per request exceed this")
    return p


def from_args(argv: list[str] | None = None) -> Options:
    import os

    args = parser().parse_args(argv)
    values = vars(args)
    explicit = {k for k in ("typing", "read", "think", "read_delay", "churn", "buyer_lifetime")
                if values.get(k) is not None}
    values = {k: v for k, v in values.items() if v is not None}
    values.setdefault("secret", os.environ.get("TOKEN_SECRET", DEV_SECRET))
    values.setdefault("urls", ["ws://127.0.0.1:8765/ws"])
    options = Options(**values).apply_mix(explicit)
    if options.target == "relay":
        # A relay only pairs connections: one agent per conversation, one conversation per shop.
        options = replace(options, shops=options.buyers, agents_per_shop=1, typing=0.0, read=0.0,
                          churn=0.0, buyer_lifetime=0.0)
    if options.pay_share > 0:
        from .payments import require_payments

        require_payments()
    return options
