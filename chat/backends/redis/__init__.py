"""Redis backends: many hub nodes sharing one Redis or one Redis Cluster.

Every key and channel name starts with ``prefix`` (prepended verbatim, so end it with a
separator such as ``"chat:"``), which lets several deployments or test runs share one Redis.

Key layout, with the prefix ``chat:`` and an entity or user ``u:7`` whose presence shard
(CRC-32 of the entity, modulo ``presence.SHARDS``) is 17:

* Broker: pub/sub channel ``chat:<channel>`` (SUBSCRIBE/PUBLISH on one Redis, sharded
  SSUBSCRIBE/SPUBLISH on a cluster: the channel's slot picks its master).
* Presence, per entity, all in the hash tag of its shard:

  - ``chat:{p17}:e:u:7``  hash, conn -> ``"<status>:<member>"``
  - ``chat:{p17}:x:u:7``  sorted set, conn -> expiry (epoch ms)
  - ``chat:{p17}:m:u:7``  hash, ``status`` -> last combined status reported, ``seen`` -> last_seen

  and, per shard, ``chat:{p17}:due``, a sorted set entity -> earliest expiry among its
  entries, which lets ``expire`` find the entities with dead entries without scanning.

The presence scripts live in ``lua/`` next to this package, each starting with a
description of its KEYS and ARGV. A script touches one entity's keys and its shard's due
set, all in one slot, so the same layout serves one Redis and a Redis Cluster
(``redis+cluster://host:port,...``: see ``topology.py`` for the slot map and the
per-master clients, ``cluster.py`` for the sharded broker). Why shards rather than a tag
per entity: the due set must be updated in the same script as the entity's entries (a
sweep that saw an entity with no entries must not remove it from the due set after a
concurrent ``set`` added one), so the due set must share the entity's slot; 256 shards
spread the load over the masters and cost a sweep 256 ZRANGEBYSCOREs, one round trip per
master.

Redis going away (or restarting, empty or not) is survived, not prevented: calls fail
within a couple of seconds while it is away, each backend logs one warning when it loses
Redis and one info line when it is back, the broker reconnects and resubscribes by
itself, and the hub's presence heartbeats re-create what a restart lost. A cluster master
that fails over is the same to the hub: calls fail or wait a little until the replica is
promoted, then the map is read again and everything goes to the new master.

Upgrading from the layout before presence shards (``chat:p:e:…``, ``chat:p:due``): stop
every node, start them on the new version, and delete the old keys at leisure
(``redis-cli --scan --pattern 'chat:p:*'``); the heartbeats fill the new ones within one
beat.
"""

from __future__ import annotations

from .broker import RedisBroker
from .client import UNREACHABLE, is_cluster_url
from .cluster import RedisClusterBroker
from .presence import RedisPresence
from .topology import ClusterMap, ClusterUnavailable


def open_redis(url: str, prefix: str, ttl_ms: int) -> tuple[RedisBroker | RedisClusterBroker, RedisPresence]:
    """The broker and presence for ``REDIS_URL``: ``redis://…`` (one Redis) or
    ``redis+cluster://host:port[,host:port…]`` (a Redis Cluster). Each owns its client."""
    broker = RedisClusterBroker(url, prefix) if is_cluster_url(url) else RedisBroker(url, prefix)
    return broker, RedisPresence(url, prefix, ttl_ms=ttl_ms)


__all__ = [
    "UNREACHABLE", "ClusterMap", "ClusterUnavailable", "RedisBroker", "RedisClusterBroker", "RedisPresence",
    "is_cluster_url", "open_redis",
]
