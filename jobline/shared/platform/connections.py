"""The explicit dependencies every core operation takes, and how to build them.

``Deps`` is a bundle of handles (pool, Redis dispatch, clock, settings, randomness); it carries no
job state, so the same operation can run in a worker, an API process or a Lambda invocation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import asyncpg
import orjson
import redis
import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from jobline.shared.dispatch.redis_dispatch import Dispatch
from jobline.shared.platform.clock import SYSTEM_CLOCK, Clock
from jobline.shared.platform.config import Settings, services_file
from jobline.shared.platform.errors import ConfigError
from jobline.shared.platform.redis_client import RedisClient
from jobline.shared.platform.replica import ReadRouter, ReadSource, is_replica_failure

T = TypeVar("T")


@dataclass
class Deps:
    pool: asyncpg.Pool
    redis: RedisClient
    dispatch: Dispatch
    clock: Clock
    settings: Settings
    rng: random.Random = field(default_factory=random.Random)
    #: Queue names known to exist in the ``queues`` table (a cache that only saves an upsert).
    known_queues: set[str] = field(default_factory=set)
    #: Routes staleness-tolerant reads to the ``DATABASE_READ_URL`` replica; None: no replica.
    reads: ReadRouter | None = None

    @property
    def read_pool(self) -> asyncpg.Pool:
        """The replica's pool, or the primary's without a replica (unrouted: prefer
        :meth:`read`, which honours the staleness bound)."""
        return self.reads.replica if self.reads is not None else self.pool

    def read_source(self) -> ReadSource:
        """Where a staleness-tolerant read would go now."""
        if self.reads is None:
            return ReadSource("primary", None, self.settings.read_max_lag_ms, "no_replica")
        return self.reads.status()

    def for_reads(self) -> tuple[Deps, ReadSource]:
        """These deps with ``pool`` pointing where a staleness-tolerant read goes now (the
        replica within the bound, else the primary), and that choice. Borrowed: never close
        the returned deps; never write or claim through them (a replica refuses writes)."""
        if self.reads is None:
            return self, self.read_source()
        pool, src = self.reads.route()
        return (self if pool is self.pool else replace(self, pool=pool)), src

    async def read(self, fn: Callable[[Deps], Awaitable[T]]) -> tuple[T, ReadSource]:
        """Run the read ``fn`` where :meth:`for_reads` says; if the replica fails under it
        (gone, restarting, a recovery conflict), mark it down and run ``fn`` again on the
        primary. ``fn`` must only read: it may run twice."""
        deps, src = self.for_reads()
        if src.source != "replica":
            return await fn(deps), src
        try:
            return await fn(deps), src
        except Exception as e:
            if self.reads is None or not is_replica_failure(e):
                raise
            self.reads.replica_failed(e)
        return await fn(self), self.read_source()

    async def close(self, timeout: float | None = None) -> None:
        """Close both stores. With ``timeout``: a pool still waiting after it for a connection
        in use (``Pool.close`` waits for every one to be released) is terminated instead."""
        if self.reads is not None:
            await self.reads.close(timeout)
        try:
            await asyncio.wait_for(self.pool.close(), timeout)
        except TimeoutError:
            self.pool.terminate()
        await asyncio.wait_for(self.redis.aclose(), timeout)


#: Connect timeout of the replica pool's connections, s.
CONNECT_TIMEOUT_S = 2.0
#: Connect timeout of the primary pool's connections, s (asyncpg's default is 60: behind a
#: network partition every new connection held its caller for a minute).
PRIMARY_CONNECT_TIMEOUT_S = 10.0
#: TCP_USER_TIMEOUT of every PostgreSQL connection, ms: how long bytes we sent may stay
#: unacknowledged before the kernel drops the connection. The server's kernel acknowledges at
#: once however slow the query, so only a dead peer or a partition trips it; the call then fails
#: (Unavailable: 503, a retried flush) instead of waiting out the 60 s command timeout.
PG_TCP_USER_TIMEOUT_MS = 10_000


def _jsonb_encode(v: Any) -> bytes:
    return b"\x01" + orjson.dumps(v)  # binary jsonb: format version 1, then the JSON text


def _jsonb_decode(b: bytes) -> Any:
    return orjson.loads(memoryview(b)[1:])


def _bound_unacked(conn: asyncpg.Connection) -> None:
    """Set :data:`PG_TCP_USER_TIMEOUT_MS` on ``conn``'s socket (TCP on Linux only)."""
    transport = getattr(conn, "_transport", None)  # asyncpg exposes no socket options
    sock = transport.get_extra_info("socket") if transport is not None else None
    opt = getattr(socket, "TCP_USER_TIMEOUT", None)
    if sock is None or opt is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, opt, PG_TCP_USER_TIMEOUT_MS)


async def _init_conn(conn: asyncpg.Connection) -> None:
    _bound_unacked(conn)
    # Binary format, so jsonb columns can take part in binary COPY (bulk submit); the Python
    # side is unchanged: objects in, objects out (``orjson.Fragment`` for JSON text as is).
    await conn.set_type_codec("jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode,
                              schema="pg_catalog", format="binary")
    await conn.set_type_codec("json", encoder=lambda v: orjson.dumps(v).decode(),
                              decoder=orjson.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset: nothing beyond what asyncpg always does (roll back an open transaction, drop
    Python-side listeners). The default also sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`` on every release, one extra round trip per pooled call (66 -> 37 us
    for ``pool.fetchval`` here). Jobline keeps no session state on pooled connections: locks are
    transaction-scoped (``pg_advisory_xact_lock``), LISTEN and the migration lock use their own
    connections. Keep it that way (``SET LOCAL``, not ``SET``)."""


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10,
                      events: bool = True, **kw: Any) -> asyncpg.Pool:
    """``events=False`` (JOBLINE_EVENTS=off) sets ``jobline.events = off`` on every connection
    at its start: the job triggers then write no outbox rows (migration 0011). A startup
    parameter, not a ``SET``: pooled connections keep no session state of their own."""
    kw.setdefault("timeout", PRIMARY_CONNECT_TIMEOUT_S)
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_conn,
                                     command_timeout=60, reset=_keep_session,
                                     server_settings=None if events else {"jobline.events": "off"},
                                     **kw)
    assert pool is not None
    return pool


#: URL -> whether it is a cluster node, asked once per process (``JOBLINE_REDIS_CLUSTER=auto``).
_CLUSTER_URLS: dict[str, bool] = {}


def is_cluster_url(url: str, mode: str | None = None) -> bool:
    """Whether ``url`` names a Redis Cluster node. ``mode`` (default ``JOBLINE_REDIS_CLUSTER``):
    ``on``/``off`` decide; ``auto`` asks the node (``INFO cluster``) once per process, with a
    short blocking call: it runs when a process opens its first client, before any load."""
    mode = (mode or os.environ.get("JOBLINE_REDIS_CLUSTER") or "auto").lower()
    if mode in ("on", "1", "true", "yes"):
        return True
    if mode in ("off", "0", "false", "no"):
        return False
    known = _CLUSTER_URLS.get(url)
    if known is None:
        probe = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        try:
            known = str(probe.info("cluster").get("cluster_enabled", 0)) == "1"
        except redis.exceptions.RedisError:
            return False  # unreachable: not cached, the caller's own commands will say why
        finally:
            probe.close()
        _CLUSTER_URLS[url] = known
    return known


def create_redis(url: str, *, blocking: bool = False, cluster: bool | None = None,
                 **kw: Any) -> RedisClient:
    """A Redis client; a cluster client when ``url`` is a cluster node (``cluster``: None asks
    :func:`is_cluster_url`). ``blocking=True`` for the connection that waits in BLPOP: no
    socket timeout (the command's own timeout bounds the wait).

    A few quick retries ride over a dropped connection (Valkey restart, failover); a longer
    outage surfaces as Unavailable and the caller's loop decides. Timeouts are not retried: a
    timed-out script may have run, and re-sending a claim would lease jobs twice.
    """
    # Only ConnectionError: redis-py's default also retries TimeoutError (and "Timeout
    # connecting to server"), so behind a network partition every call took 4 x 5 s and a
    # submit's Redis mirror held its request for 20-40 s (tests/chaos/test_partitions.py P2).
    retry = Retry(ExponentialBackoff(cap=0.5, base=0.02), 3,
                  supported_errors=(redis.exceptions.ConnectionError,))
    if blocking:
        kw.setdefault("socket_timeout", None)
    else:
        # short: a frozen Redis must turn into a fast 503 (or a committed submit that the
        # scheduler's recent sweep dispatches), never a request hanging for half a minute
        kw.setdefault("socket_timeout", 5)
    if cluster is None:
        cluster = is_cluster_url(url)
    if cluster:
        # The cluster client follows MOVED/ASK and re-reads the slot map after a failover;
        # its own retries cover a master that died until its replica is promoted.
        return RedisCluster.from_url(
            url, socket_keepalive=True, socket_connect_timeout=5,
            # connection errors only, like the single-node client: a timed-out command may
            # have run, and behind a partition retried timeouts held callers ~30 s
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), 3,
                        supported_errors=(redis.exceptions.ConnectionError,)),
            # pub/sub (cancel signals, progress subscriptions) takes its connections from the
            # same per-node pool: redis-py's default of 100 per node would fail every command
            # to a node once 100 subscriptions sit on it
            max_connections=2**16,
            retry_on_error=[redis.exceptions.ConnectionError], **kw)
    return aioredis.Redis.from_url(
        url, health_check_interval=10, socket_keepalive=True, socket_connect_timeout=5,
        retry=retry, retry_on_error=[redis.exceptions.ConnectionError], **kw)


async def connect(settings: Settings, clock: Clock = SYSTEM_CLOCK, *, pool_size: int | None = None,
                  check_redis_policy: bool = True) -> Deps:
    """Open a pool and a Redis client for ``settings``.

    Refuses a Redis whose ``maxmemory-policy`` is not ``noeviction``: an evicting Redis would drop
    dispatch entries silently, which reconcile could only repair late.
    """
    if not settings.database_url or not settings.redis_url:
        f = services_file(settings.home)
        found = "found but without both URLs" if f.exists() else "not found"
        raise ConfigError(
            "DATABASE_URL and REDIS_URL must be set, or a `jobline run` must be running: looked "
            f"for its {f} ({found}; the directory is JOBLINE_HOME, default .jobline)")
    r = create_redis(settings.redis_url,
                     cluster=is_cluster_url(settings.redis_url, settings.redis_cluster))
    if check_redis_policy:
        policies: list[Any] = []
        try:
            if isinstance(r, RedisCluster):  # every primary: one evicting master is enough
                per_node: Any = await r.config_get("maxmemory-policy",
                                                   target_nodes=RedisCluster.PRIMARIES)
                cfgs = (list(per_node.values()) if "maxmemory-policy" not in per_node
                        and b"maxmemory-policy" not in per_node else [per_node])
            else:
                cfgs = [await r.config_get("maxmemory-policy")]
        except Exception:  # managed Redis may forbid CONFIG; nothing to check then
            cfgs = []
        for cfg in cfgs:
            p = cfg.get("maxmemory-policy") or cfg.get(b"maxmemory-policy")
            policies.append(p.decode() if isinstance(p, bytes) else p)
        policy = next((p for p in policies if p and p != "noeviction"), None)
        if policy:
            await r.aclose()
            raise ConfigError(
                f"Redis maxmemory-policy is {policy!r}; Jobline needs 'noeviction' "
                "(an evicting Redis silently drops queued jobs)")
    pool = await create_pool(settings.database_url, max_size=pool_size or settings.pg_pool_size,
                             events=settings.events)
    reads = None
    if settings.database_read_url:
        # min_size=0: a replica that is down must not stop the process from starting (its
        # reads go to the primary until it answers); a short connect timeout keeps a replica
        # that black-holes packets from holding a check (or a read) for a minute.
        replica = await create_pool(settings.database_read_url, min_size=0,
                                    max_size=pool_size or settings.pg_pool_size,
                                    events=settings.events, timeout=CONNECT_TIMEOUT_S)
        reads = ReadRouter(pool, replica, settings.read_max_lag_ms)
    return Deps(pool=pool, redis=r, dispatch=Dispatch(r, settings.redis_prefix, settings.redis_slot_groups),
                clock=clock, settings=settings, reads=reads)
