"""One name for "a Redis client": a single node or a cluster (redis-py's two async classes).

Cluster mode changes how keys may be combined (one slot per script or multi-key command), not
what callers do; code that must choose asks :func:`is_cluster`.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

RedisClient: TypeAlias = "Redis | RedisCluster"


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)
