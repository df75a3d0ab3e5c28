"""Redis backends: many hub nodes sharing one Redis.

Every key and channel name starts with ``prefix`` (prepended verbatim, so end it with a
separator such as ``"chat:"``), which lets several deployments or test runs share one Redis.

Key layout, with the prefix ``chat:`` and an entity or user ``u:7``:

* Broker: pub/sub channel ``chat:<channel>``.
* Presence, per entity:

  - ``chat:p:e:u:7``  hash, conn -> ``"<status>:<member>"``
  - ``chat:p:x:u:7``  sorted set, conn -> expiry (epoch ms)
  - ``chat:p:m:u:7``  hash, ``status`` -> last combined status reported, ``seen`` -> last_seen

  and ``chat:p:due``, a sorted set entity -> earliest expiry among its entries, which lets
  ``expire`` find the entities with dead entries without scanning.

The presence scripts live in ``lua/`` next to this module, each starting with a
description of its KEYS and ARGV. Presence keeps all of an entity's keys and the shared
``p:due`` in one script call, so it needs a single Redis (not a cluster).

Redis going away (or restarting, empty or not) is survived, not prevented: calls fail
within a couple of seconds while it is away, each backend logs one warning when it loses
Redis and one info line when it is back, the broker reconnects and resubscribes by
itself, and the hub's presence heartbeats re-create what a restart lost.
"""

from __future__ import annotations

from .broker import RedisBroker
from .client import UNREACHABLE
from .presence import RedisPresence

__all__ = ["UNREACHABLE", "RedisBroker", "RedisPresence"]
