"""The Redis client Jobline runs on, one server or a Cluster, and the few operations that must be
spelled differently on a Cluster.

``REDIS_URL`` may name one Redis/Valkey server or any node of a Redis/Valkey Cluster
(``jobline.shared.platform.connections.create_redis`` decides which client to build). Code that
talks to Redis takes a :data:`RedisClient` and keeps to the Cluster's rules, which a single
server accepts as well:

  * a command or Lua script touches keys of **one slot** only (``CROSSSLOT`` otherwise); the
    multi-key reads here (:func:`get_many`) split by slot on a Cluster;
  * no ``MULTI`` across slots, no ``KEYS``; pipelines are non-transactional (``ClusterPipeline``
    sends each command to its slot's node);
  * ``PUBLISH`` cannot be pipelined on a Cluster client (redis-py refuses it):
    :func:`publish_many` sends a batch as one script instead. Classic pub/sub is broadcast over
    the cluster bus, so a message published on any node reaches subscribers on every node, and
    ``client.pubsub()`` works on both clients (the Cluster one subscribes on the node serving
    the channel's slot).

Invariant: every helper behaves the same on both clients (same results, same errors for an
unreachable server); only the number of round trips differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster

#: The client type: one server, or a Cluster.
RedisClient: TypeAlias = aioredis.Redis | RedisCluster

#: Errors that mean "Redis is not reachable or not serving now" (not a bug in the command): a
#: lost connection or timeout, and on a Cluster a shard without a master (failover under way,
#: ``CLUSTERDOWN``/``MASTERDOWN``/``TRYAGAIN``), a slot no node serves, or no node answering at
#: all. Note that the last two are not :class:`redis.exceptions.RedisError` subclasses.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterError,  # includes ClusterDownError, MasterDownError
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.RedisClusterUnreachableError,
    OSError,  # a socket failure redis-py did not wrap
)

#: Every error a Redis command may raise, on either client.
REDIS_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.RedisError,
    redis.exceptions.RedisClusterException,
)

# PUBLISH of ARGV[2k-1] with message ARGV[2k], for every k. No keys: on a Cluster the script
# runs on any primary, which broadcasts each message over the cluster bus like a plain PUBLISH.
_PUBLISH_MANY = """
for i = 1, #ARGV, 2 do
    redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
end
return #ARGV / 2
"""


def is_cluster(client: object) -> bool:
    """True for a Redis Cluster client (``redis.asyncio.cluster.RedisCluster``)."""
    return isinstance(client, RedisCluster)


def colocated(key: str, suffix: str) -> str:
    """A key in the same Cluster slot as ``key``: ``key`` + ``suffix`` when ``key`` carries a
    hash tag (``P:{Q}:x`` -> ``P:{Q}:x:suffix``), else ``{key}`` + ``suffix`` (the tag is the
    whole of ``key``, which is exactly what ``key``'s own slot is computed from).

    For state that must be lost together (a flushed shard takes both or neither), e.g. a stream
    and the marker that says it exists."""
    start = key.find("{")
    if start == -1:
        if "}" in key:
            raise ValueError(f"cannot co-locate with {key!r}: a stray '}}'")
        return f"{{{key}}}{suffix}"
    end = key.find("}", start + 1)
    if end > start + 1:
        return f"{key}{suffix}"
    raise ValueError(f"cannot co-locate with {key!r}: it has '{{' but no hash tag")


async def get_many(client: RedisClient, keys: Sequence[str]) -> list[Any]:
    """``GET`` of every key, in order (None for a missing key): one ``MGET`` on a single server;
    on a Cluster one ``MGET`` per slot (``mget_nonatomic``), since the keys are in many slots.
    Not a snapshot on a Cluster: each slot is read at its own moment."""
    if not keys:
        return []
    if isinstance(client, RedisCluster):
        return list(await client.mget_nonatomic(list(keys)))
    return list(await client.mget(list(keys)))


async def ping_all(client: RedisClient) -> None:
    """``PING`` the server, or on a Cluster every primary (one round trip each, concurrently);
    raises like any command when one does not answer."""
    if isinstance(client, RedisCluster):
        await client.ping(target_nodes=RedisCluster.PRIMARIES)
    else:
        await client.ping()


async def used_memory(client: RedisClient) -> int | None:
    """Bytes of memory Redis uses (``INFO memory`` ``used_memory``): on a Cluster the sum over
    its primaries (replicas hold copies, not more data)."""
    if isinstance(client, RedisCluster):
        per_node: Any = await client.info("memory", target_nodes=RedisCluster.PRIMARIES)
        # one node answers with its own dict, several with {node name: dict}
        infos = per_node.values() if "used_memory" not in per_node else [per_node]
        found = [int(i["used_memory"]) for i in infos if "used_memory" in i]
        return sum(found) if found else None
    info: Any = await client.info("memory")
    used = info.get("used_memory")
    return int(used) if used is not None else None


async def publish_many(client: RedisClient, messages: Sequence[tuple[str, bytes | str]]) -> None:
    """``PUBLISH`` each (channel, message), in one round trip: a pipeline on a single server, one
    keyless script on a Cluster (redis-py does not pipeline PUBLISH there)."""
    if not messages:
        return
    if isinstance(client, RedisCluster):
        args: list[bytes | str] = []
        for channel, message in messages:
            args += [channel, message]
        await client.register_script(_PUBLISH_MANY)(keys=[], args=args)
        return
    async with client.pipeline(transaction=False) as pipe:
        for channel, message in messages:
            pipe.publish(channel, message)
        await pipe.execute()
