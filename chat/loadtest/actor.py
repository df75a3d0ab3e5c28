"""One simulated user and its conversations: connection, sending, and the correctness ledger.

Correctness ledger: every ``ack`` a sender gets records ``seq → sender`` for its
conversation and, unless the counterpart already has it, puts the seq in the
conversation's *undelivered* set; every ``msg`` a participant receives takes it
out. A seq received twice by the same user is a duplicate (except a resend on
a new connection above the cursor it resumed from: the cursor stops below the
first hole, so the hub owes what lies beyond it again); a seq at or below the
last one a connection received in that conversation is a reordering; whatever
is still undelivered after the final drain is lost.

Latency is measured on one clock: the sender's ``perf_counter`` when it wrote
``send`` (or ``typing``, ``read``) and the receiving participant's when the
``msg`` (``typing``, ``receipt``) arrived.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import msgpack
from websockets.typing import BytesLike

from .wsclient import WsClient, connect

if TYPE_CHECKING:
    from .engine import Engine

perf = time.perf_counter
_pack = msgpack.Packer(use_bin_type=True).pack
_unpack = msgpack.unpackb


class RequestFailed(Exception):
    """The hub answered a request with an ``error`` frame, or the connection went away."""


class Conv:
    __slots__ = ("acked", "active", "agent", "buyer", "id", "next_seq", "read_at", "sent_at", "typing_at",
                 "undelivered")

    def __init__(self, conv_id: str, buyer: Actor, agent: Actor | None) -> None:
        self.id = conv_id
        self.buyer = buyer
        self.agent = agent
        self.acked: dict[int, str] = {}
        self.undelivered: set[int] = set()
        self.sent_at: dict[str, float] = {}
        self.typing_at: dict[str, float] = {}
        self.read_at: dict[tuple[str, int], float] = {}
        self.active = False
        self.next_seq = 0
        """Relay target only: the seq a sender stamps on its frames (the hub assigns them otherwise)."""

    def other(self, actor: Actor) -> Actor | None:
        return self.agent if actor is self.buyer else self.buyer


class Actor:
    """One user with (at most) one connection at a time."""

    __slots__ = ("conn", "connected_at", "convs", "cursor", "departed", "engine", "gen", "inbox", "last", "leaving",
                 "node", "online", "own", "pending", "received", "requests", "rid", "role", "shop", "stamp", "token",
                 "tokens", "user")

    def __init__(self, engine: Engine, user: str, role: str, shop: str, node: int, token: str) -> None:
        self.engine = engine
        self.user = user
        self.role = role
        self.shop = shop
        self.node = node
        self.token = token
        self.conn: WsClient | None = None
        self.gen = 0
        self.online = False
        self.connected_at = 0.0
        """When this actor's current connection began (a message sent earlier may have
        reached it through the resume, not live)."""
        self.leaving = False
        self.departed = False
        self.convs: list[Conv] = []
        self.received: dict[str, set[int]] = {}
        self.own: dict[str, set[int]] = {}
        self.cursor: dict[str, int] = {}
        """Highest seq per conversation up to which this user has everything (the resume cursor)."""
        self.last: dict[str, int] = {}
        """Highest seq received per conversation on the current connection (the order check)."""
        self.inbox: str | None = None
        self.pending: dict[str, tuple[Conv, bytes, float]] = {}
        """Sends not acknowledged yet: resent with the same cmid after a reconnect."""
        self.requests: dict[int, tuple[str, float, Any]] = {}
        self.rid = 0
        self.tokens = engine.opt.user_burst
        self.stamp = 0.0

    # --- connection ----------------------------------------------------------

    def url(self) -> str:
        eng = self.engine
        if eng.opt.target == "relay":
            return eng.urls[self.node].rstrip("/") + f"/{self.shop}"
        return eng.urls[self.node]

    async def connect(self) -> None:
        """Connect, authenticate and sync (resuming from cursors); resend what was never acknowledged."""
        eng = self.engine
        self.gen += 1
        gen = self.gen
        t0 = perf()
        self.connected_at = t0

        def on_frame(data: BytesLike) -> None:
            if gen == self.gen:
                self.on_frame(data)

        def on_close(code: int | None, reason: str) -> None:
            if gen == self.gen:
                self.closed(code, reason)

        self.conn = await connect(self.url(), on_frame, on_close)
        eng.results.counts["connections"] += 1
        if eng.opt.target == "hub":
            await self.request({"type": "auth", "token": self.token}, "auth")
            eng.sample("connect", perf() - t0)
            cursors = {c.id: self.cursor.get(c.id, 0) for c in self.convs}
            self.last = dict(cursors)
            frame: dict[str, Any] = {"type": "sync", "cursors": cursors}
            if self.inbox is not None:
                frame["inbox"] = self.inbox
            synced = await self.request(frame, "sync")
            self.inbox = synced.get("inbox")
        else:
            eng.sample("connect", perf() - t0)
        if gen != self.gen or self.conn is None or not self.conn.open:
            raise RequestFailed("closed while connecting")
        self.online = True
        eng.online += 1
        for _, data, _ in list(self.pending.values()):
            self.conn.send(data)
            eng.results.counts["resent"] += 1

    def request(self, frame: dict[str, Any], kind: str) -> asyncio.Future[dict[str, Any]]:
        if self.conn is None:
            raise RequestFailed("not connected")
        self.rid += 1
        frame["id"] = self.rid
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.requests[self.rid] = (kind, perf(), fut)
        self.conn.send(_pack(frame))
        self.engine.requests += 1
        return fut

    def closed(self, code: int | None, reason: str) -> None:
        eng = self.engine
        if self.online:
            self.online = False
            eng.online -= 1
        self.conn = None
        for kind, _, fut in self.requests.values():
            if isinstance(fut, asyncio.Future) and not fut.done():
                fut.set_exception(RequestFailed(f"{kind}: connection closed ({code})"))
        self.requests.clear()
        if code == 4999 or self.leaving or eng.stopping_connections:
            return  # we closed it
        if code == 4998:
            eng.results.counts["churned"] += 1
        else:
            eng.results.error(f"closed:{code}", f"{self.user}: {reason}")
        eng.reconnect_later(self)

    def drop(self) -> None:
        """Churn: lose the connection without a goodbye (as a phone changing networks does)."""
        conn = self.conn
        if conn is not None and self.online:
            conn.close_code = 4998
            conn.abort()

    def close(self) -> None:
        conn = self.conn
        if conn is not None:
            conn.close_code = 4999
            conn.close()

    # --- sending -------------------------------------------------------------

    def take(self, now: float) -> bool:
        """The generator's own per-user rate limit, so the hub's is never what gets measured."""
        opt = self.engine.opt
        self.tokens = min(opt.user_burst, self.tokens + (now - self.stamp) * opt.user_rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def send_text(self, conv: Conv) -> None:
        eng = self.engine
        if not eng.sending or not conv.active:
            return
        self.rid += 1
        eng.cmid += 1
        cmid = f"{eng.run_id}.{eng.cmid}"
        body = {"kind": "text", "text": eng.text}
        now = perf()
        if eng.opt.target == "relay":
            conv.next_seq += 1
            seq = conv.next_seq
            data = _pack({"type": "msg", "conv": conv.id, "seq": seq, "sender": self.user, "cmid": cmid,
                          "body": body})
            conv.sent_at[cmid] = now
            if self.conn is not None:
                self.conn.send(data)
            self.acked(conv, seq)
        else:
            data = _pack({"type": "send", "id": self.rid, "conv": conv.id, "cmid": cmid, "body": body})
            conv.sent_at[cmid] = now
            self.pending[cmid] = (conv, data, now)
            eng.outstanding_acks += 1
            self.requests[self.rid] = ("send", now, cmid)
            if self.online and self.conn is not None:
                self.conn.send(data)
        eng.requests += 1
        eng.window.sent += 1

    def send_typing(self, conv: Conv) -> None:
        if self.online and self.conn is not None:
            conv.typing_at[self.user] = perf()
            self.conn.send(_pack({"type": "typing", "conv": conv.id, "active": True}))
            self.engine.results.counts["typing_sent"] += 1

    def send_read(self, conv: Conv) -> None:
        eng = self.engine
        seq = self.last.get(conv.id, 0)
        if not (eng.sending and conv.active and self.online and self.conn is not None) or seq == 0:
            return
        self.rid += 1
        now = perf()
        conv.read_at[(self.user, seq)] = now
        self.requests[self.rid] = ("read", now, None)
        self.conn.send(_pack({"type": "read", "id": self.rid, "conv": conv.id, "seq": seq}))
        eng.requests += 1

    # --- receiving -----------------------------------------------------------

    def on_frame(self, data: BytesLike) -> None:
        frame = _unpack(data)
        kind = frame["type"]
        if kind == "msg":
            self.on_msg(frame)
        elif kind == "ack":
            self.on_ack(frame)
        elif kind == "typing":
            conv = self.engine.convs.get(frame["conv"])
            if conv is not None:
                t0 = conv.typing_at.pop(frame["user"], None)
                if t0 is not None:
                    self.engine.sample("typing", perf() - t0)
        elif kind == "receipt":
            if frame["user"] != self.user:
                conv = self.engine.convs.get(frame["conv"])
                if conv is not None:
                    t0 = conv.read_at.pop((frame["user"], frame["seq"]), None)
                    if t0 is not None:
                        self.engine.sample("receipt", perf() - t0)
        elif kind == "presence":
            self.engine.results.counts["presence"] += 1
        else:
            self.on_reply(kind, frame)

    def on_reply(self, kind: str, frame: dict[str, Any]) -> None:
        eng = self.engine
        req = self.requests.pop(frame.get("re") or -1, None)
        if kind == "error":
            what = req[0] if req else "push"
            eng.results.error(f"hub:{frame.get('code')}:{what}", str(frame.get("message")))
            eng.window.errors += 1
            if req is not None:
                if isinstance(req[2], asyncio.Future):
                    if not req[2].done():
                        req[2].set_exception(RequestFailed(f"{what}: {frame.get('code')} {frame.get('message')}"))
                elif what == "send":
                    pending = self.pending.pop(req[2], None)
                    if pending is not None:
                        eng.outstanding_acks -= 1
                        pending[0].sent_at.pop(req[2], None)
            return
        if req is None:
            return
        what, t0, fut = req
        eng.sample(what, perf() - t0)
        if isinstance(fut, asyncio.Future) and not fut.done():
            fut.set_result(frame)

    def on_ack(self, frame: dict[str, Any]) -> None:
        eng = self.engine
        now = perf()
        self.requests.pop(frame.get("re") or -1, None)
        cmid = frame["cmid"]
        pending = self.pending.pop(cmid, None)
        if pending is None:
            return
        eng.outstanding_acks -= 1
        eng.sample("ack", now - pending[2])
        if frame.get("duplicate"):
            eng.results.counts["duplicate_acks"] += 1
        self.acked(pending[0], frame["seq"])

    def acked(self, conv: Conv, seq: int) -> None:
        if seq in conv.acked:
            return
        conv.acked[seq] = self.user
        own = self.own.get(conv.id)
        if own is None:
            own = self.own[conv.id] = set()
        own.add(seq)
        self.advance(conv.id)
        other = conv.other(self)
        if other is not None and other.departed:
            # Acknowledged after the other side left for good: nobody can receive it.
            self.engine.results.counts["acked_after_recipient_left"] += 1
            return
        if other is not None and seq not in other.received.get(conv.id, ()):
            conv.undelivered.add(seq)
            self.engine.outstanding += 1

    def opened(self, conv_id: str, last_seq: int) -> None:
        """Start the resume cursor of a conversation this connection just opened.

        The hub goes live from the view's ``last_seq`` (what came before is history, not
        owed to this connection), so a new conversation's cursor starts there and then
        moves only through :meth:`advance`. A conversation this user already resumes
        keeps its cursor: seqs between it and ``last_seq`` may never have reached it,
        and a cursor above them would skip them on the next resume.
        """
        if all(c.id != conv_id for c in self.convs):
            self.cursor[conv_id] = max(self.cursor.get(conv_id, 0), last_seq)
        self.advance(conv_id)
        self.last[conv_id] = max(self.last.get(conv_id, 0), last_seq)  # the hub's live start on this connection

    def advance(self, conv_id: str) -> None:
        """Move the resume cursor over seqs received or acknowledged, stopping at the first hole."""
        c = self.cursor.get(conv_id, 0)
        received = self.received.get(conv_id, ())
        own = self.own.get(conv_id, ())
        while c + 1 in received or c + 1 in own:
            c += 1
        self.cursor[conv_id] = c

    def on_msg(self, frame: dict[str, Any]) -> None:
        eng = self.engine
        now = perf()
        conv_id = frame["conv"]
        seq = frame["seq"]
        received = self.received.get(conv_id)
        if received is None:
            received = self.received[conv_id] = set()
        if seq in received:
            if seq > self.last.get(conv_id, 0):
                # New on this connection and above the cursor it resumed from: the cursor stopped
                # below a hole (an unacknowledged send of ours), so the hub rightly sends it again.
                self.last[conv_id] = seq
                eng.results.counts["repushed"] += 1
                return
            eng.results.violation("duplicate", f"{self.user} got {conv_id}#{seq} twice")
            return
        if seq <= self.last.get(conv_id, 0):
            eng.results.violation("reordered", f"{self.user} got {conv_id}#{seq} after #{self.last[conv_id]}")
        else:
            self.last[conv_id] = seq
        received.add(seq)
        self.advance(conv_id)
        if frame["sender"] == self.user:
            return  # our own message pushed back on a resume
        conv = eng.convs.get(conv_id)
        if conv is None:
            return  # a new conversation's card, before the buyer's ``opened``
        if seq in conv.undelivered:
            conv.undelivered.discard(seq)
            eng.outstanding -= 1
        cmid = frame.get("cmid")
        if cmid is not None:
            t0 = conv.sent_at.pop(cmid, None)
            if t0 is not None:
                sender = conv.buyer if frame["sender"] == conv.buyer.user else conv.agent
                # Either side reconnected since the send: the message came with a resume
                # (after a reconnect delay this generator chose), not through live routing.
                resumed = t0 < self.connected_at or (sender is not None and t0 < sender.connected_at)
                eng.delivered(now - t0, resumed)
                if eng.closed_loop:
                    sender = conv.other(self)
                    if sender is not None:
                        sender.send_text(conv)
        opt = eng.opt
        if opt.read > 0 and eng.rng.random() < opt.read:
            eng.later(eng.rng.uniform(*opt.read_delay), self.send_read, conv)
