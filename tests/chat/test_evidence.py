"""Evidence packages end to end: exported through the server API of a real hub with the
ledger, checked offline by ``python -m chat verify``, and caught when tampered with (in
the JSON, or in the chat database before the export)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack

from chat import evidence
from chat.server import ChatServer
from chat.store.memory import MemoryStore

from .test_delivery import open_pair
from .test_money import PIN, api, card_states, fund

KEY = "evidence-key-for-tests-0123456789"


def run_verify(path: Path, *args: str, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EVIDENCE_KEY"}
    if key is not None:
        env["EVIDENCE_KEY"] = key
    return subprocess.run([sys.executable, "-m", "chat", "verify", str(path), *args], env=env,
                          capture_output=True, text=True, timeout=60)


async def story(server: ChatServer, url: str) -> tuple[str, str]:
    """A conversation with a paid order (a card and its update) and a recalled message;
    returns (conversation id, order id) once both cards are stored."""
    buyer, agent, conv = await open_pair(url)
    await fund(server, "user:b1", 100_000, "fund-b1")
    assert (await buyer.request({"type": "set_pin", "pin": PIN}))["type"] == "ok"
    await buyer.send_text(conv, "is it fresh?", "q1")
    sent = await buyer.send_text(conv, "wrong price, sorry", "q2")
    assert (await buyer.request({"type": "recall", "conv": conv, "seq": sent["seq"]}))["type"] != "error"
    offer = await agent.request({"type": "offer", "conv": conv, "price": 9900, "key": "offer-ev-1"})
    order = offer["view"]["order_id"]
    paid = await buyer.request({"type": "pay", "conv": conv, "order": order, "pin": PIN, "key": "pay-ev-001"})
    assert paid["view"]["state"] == "HELD"
    assert await card_states(agent, conv, 2) == [("card", "OFFERED"), ("card_update", "HELD")]
    await agent.send_text(conv, "shipping tomorrow", "r1")
    for client in (buyer, agent):
        await client.close()
    return conv, order


async def export(server: ChatServer, conv: str) -> tuple[int, dict[str, Any]]:
    return await asyncio.to_thread(api, server, "GET", f"/api/v1/conversations/{conv}/evidence")


async def test_exported_package_verifies_and_tampering_names_the_link(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    server = await server_factory(evidence_key=KEY)
    conv, order = await story(server, f"ws://127.0.0.1:{server.port}/")
    status, package = await export(server, conv)
    assert status == 200, package
    messages = package["messages"]
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
    assert package["conversation"]["last_seq"] == len(messages)
    recalled = [m for m in messages if m["recalled"]]
    assert [m["body"]["text"] for m in recalled] == ["wrong price, sorry"]  # the original stays
    notices = [m for m in messages if m["kind"] == "recall"]
    assert [n["body"] for n in notices] == [{"seq": recalled[0]["seq"]}]
    assert package["recalls"] == [{"seq": recalled[0]["seq"], "notice": notices[0]["seq"]}]
    cards = package["cards"]
    assert [(c["kind"], c["state"], c["id"]) for c in cards] == [("card", "OFFERED", order),
                                                                  ("card_update", "HELD", order)]
    ledger = package["ledger"]
    assert {c["event"] for c in cards} <= {e["id"] for e in ledger["events"]}
    assert [o["order_id"] for o in ledger["orders"]] == [order] and ledger["orders"][0]["state"] == "HELD"
    assert [e["action"] for e in ledger["events"]] == ["offered", "paid"]
    assert package["chain"]["head"] == messages[-1]["hash"]
    assert package["signature"]["alg"] == "HMAC-SHA256"

    good = tmp_path / "evidence.json"
    good.write_text(json.dumps(package))
    done = run_verify(good)
    assert done.returncode == 0 and done.stdout.startswith("OK"), done.stdout + done.stderr

    wrong_key = run_verify(good, "--key", "another-key")
    assert wrong_key.returncode == 1 and "signature wrong key" in wrong_key.stdout
    unkeyed = run_verify(good, key=None)
    assert unkeyed.returncode == 1 and "signature not checked" in unkeyed.stdout

    # An edited message: the chain breaks at that message, and the signature no longer holds.
    target = next(m for m in messages if m["body"].get("text") == "is it fresh?")
    edited = json.loads(json.dumps(package))
    edited["messages"][target["seq"] - 1]["body"]["text"] = "is it stale?"
    bad = tmp_path / "edited.json"
    bad.write_text(json.dumps(edited))
    done = run_verify(bad)
    assert done.returncode == 1
    assert f"broken link at seq {target['seq']}" in done.stdout and "signature invalid" in done.stdout, done.stdout

    # A message dropped from the package: named by the seq that is missing.
    dropped = json.loads(json.dumps(package))
    del dropped["messages"][2]
    bad.write_text(json.dumps(dropped))
    done = run_verify(bad)
    assert done.returncode == 1 and "broken link at seq 3: message 3 is missing" in done.stdout, done.stdout

    # A card pointing at another ledger event (re-signed, so only the cross-check can tell).
    moved = json.loads(json.dumps(package))
    card_seq = cards[0]["seq"]
    moved["messages"][card_seq - 1]["body"]["event"] = 999_999
    bad.write_text(json.dumps(evidence.sign(moved, KEY.encode())))
    done = run_verify(bad)
    assert done.returncode == 1 and f"broken link at seq {card_seq}" in done.stdout
    assert "ledger event 999999" in done.stdout, done.stdout


async def test_a_row_edited_in_the_database_is_caught_in_the_next_export(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """The package is signed as exported, but the chain inside it still shows that a stored
    message was changed behind the hub's back."""
    server = await server_factory(evidence_key=KEY)
    conv, _ = await story(server, f"ws://127.0.0.1:{server.port}/")
    db = sqlite3.connect(tmp_path / "chat.db")
    seq = db.execute("SELECT seq FROM messages WHERE conv = ? AND cmid = 'r1'", (conv,)).fetchone()[0]
    db.execute("UPDATE messages SET body = ? WHERE conv = ? AND seq = ?",
               (msgpack.packb({"text": "never shipping"}), conv, seq))
    db.commit()
    db.close()
    status, package = await export(server, conv)
    assert status == 200
    path = tmp_path / "evidence.json"
    path.write_text(json.dumps(package))
    done = run_verify(path)
    assert done.returncode == 1 and f"broken link at seq {seq}:" in done.stdout, done.stdout
    assert "signature" not in done.stdout  # the export itself is genuine


async def test_export_needs_the_key_and_a_known_conversation(server_factory: Callable[..., Any]) -> None:
    server = await server_factory()
    status, body = await export(server, "c_nope")
    assert status == 503 and "EVIDENCE_KEY" in body["message"]
    keyed = await server_factory(evidence_key=KEY)
    status, body = await export(keyed, "c_nope")
    assert status == 404 and body["code"] == 3001


async def test_verify_reads_only_packages() -> None:
    """Garbage, another format or a package without a signature never verifies."""
    assert not evidence.verify([], KEY.encode()).ok
    assert not evidence.verify({"format": "other"}, KEY.encode()).ok
    store = MemoryStore()
    await store.start()
    await store.open_conversation("c1", "b", "s", {"id": "l1", "title": "Tea"}, "a", 1)
    package = await evidence.build(store, "c1", KEY.encode(), 5)
    assert package is not None and evidence.verify(package, KEY.encode()).ok
    unsigned = {k: v for k, v in package.items() if k != "signature"}
    assert evidence.verify(unsigned, KEY.encode()).signature == "missing"
    package["chain"]["head"] = "00" * 32
    assert not evidence.verify(evidence.sign(package, KEY.encode()), KEY.encode()).ok
