"""The load generator: a short smoke run against a real hub, and its correctness ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chat.loadtest.engine import Actor, Conv, Engine
from chat.loadtest.options import Options
from chat.loadtest.runner import render, report
from chat.server import build

from .conftest import SECRET, make_config


async def test_smoke_run_against_a_hub(tmp_path: Path) -> None:
    server = build(make_config(tmp_path, presence_ttl=30.0))
    await server.start()
    try:
        opt = Options(
            urls=[f"ws://127.0.0.1:{server.port}/ws"], secret=SECRET, duration=3.0, warmup=0.5,
            shops=4, agents_per_shop=2, buyers=24, rate=60.0, user_rate=5.0, user_burst=5.0,
            typing=0.3, read=0.5, think=(0.05, 0.2), read_delay=(0.05, 0.2), churn=0.05,
            buyer_lifetime=2.0, reconnect_delay=(0.05, 0.2), drain=5.0, progress=0.0, run_id="smoke",
        )
        results = await Engine(opt).run()
    finally:
        await server.close()
    rep = report(opt, results)
    assert rep["correctness"] == {"checked": True, "acked_messages": rep["correctness"]["acked_messages"],
                                  "lost": 0, "duplicated": 0, "reordered": 0, "ok": True}, render(rep)
    assert rep["correctness"]["acked_messages"] > 50, render(rep)
    msg = rep["types"]["msg"]
    assert msg["count"] > 50 and 0 < msg["p50_ms"] <= msg["p99_ms"] <= msg["max_ms"] < 5000, render(rep)
    assert {"ack", "connect", "open", "typing", "receipt"} <= set(rep["types"]), render(rep)
    assert rep["errors"] == {}, render(rep)
    assert rep["counts"].get("resumed", 0) >= 1 and rep["counts"].get("buyers_left", 0) >= 1, render(rep)
    assert rep["ok"], render(rep)


def _pair() -> tuple[Engine, Conv, Actor, Actor]:
    engine = Engine(Options(read=0.0, progress=0.0))
    engine.measuring = True
    buyer = Actor(engine, "b", "buyer", "s", 0, "")
    agent = Actor(engine, "a", "agent", "s", 0, "")
    conv = Conv("c1", buyer, agent)
    engine.convs[conv.id] = conv
    return engine, conv, buyer, agent


def _msg(seq: int, sender: str, cmid: str | None = None) -> dict[str, Any]:
    return {"type": "msg", "conv": "c1", "seq": seq, "sender": sender, "cmid": cmid, "body": {}}


def test_ledger_reports_loss_duplicates_and_reordering() -> None:
    engine, conv, buyer, agent = _pair()
    for seq in (2, 3, 4):
        agent.acked(conv, seq)
    buyer.on_msg(_msg(2, "a"))
    buyer.on_msg(_msg(2, "a"))  # duplicate
    buyer.on_msg(_msg(4, "a"))
    buyer.on_msg(_msg(3, "a"))  # after 4: reordered
    assert engine.results.correctness == {"duplicate": 1, "reordered": 1}
    agent.acked(conv, 5)
    engine._finalize()
    assert engine.results.correctness["lost"] == 1
    assert engine.outstanding == 1


def test_ledger_accepts_delivery_before_ack_and_resume_cursor_skips_holes_only_when_filled() -> None:
    engine, conv, buyer, agent = _pair()
    buyer.cursor["c1"] = 1  # the opening card, from ``opened``
    buyer.on_msg(_msg(2, "a"))  # delivered before the sender's ack arrives
    agent.acked(conv, 2)
    assert not conv.undelivered and engine.outstanding == 0
    buyer.acked(conv, 4)  # own message; seq 3 (the agent's) still in flight
    assert buyer.cursor["c1"] == 2
    buyer.on_msg(_msg(3, "a"))
    assert buyer.cursor["c1"] == 4
    agent.on_msg(_msg(4, "b"))
    engine._finalize()
    assert not engine.results.correctness
