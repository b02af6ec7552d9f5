"""Jobline's Redis use outside the dispatch layer, on a real Valkey Cluster (3 masters + 3
replicas, the session's ``valkey_cluster`` fixture) through redis-py's ``RedisCluster`` client:
the worker registry, fleet commands, progress and cancel pub/sub, the Redis Streams event bus,
the per-key rate limit, backpressure depths, samples and the readiness probe. Each test spreads
its keys/channels over several masters on purpose (a one-node accident would hide CROSSSLOT).

The last tests inject faults (a master SIGKILLed and failed over, a shard flushed); they restore
the cluster before returning. Dispatch itself (per-queue keys, claim, wake-ups) is tested by
the dispatch suite, not here.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from conftest import ExternalCluster
from redis.asyncio.cluster import RedisCluster

from jobline.api import health
from jobline.local.valkey_cluster import ValkeyCluster
from jobline.shared.core import cancellation, progress
from jobline.shared.core.progress import ProgressReport
from jobline.shared.dispatch import backpressure
from jobline.shared.events import worker_events
from jobline.shared.events.buses.redis_streams import RedisStreamsBus
from jobline.shared.events.outbox import Event
from jobline.shared.fleet import control
from jobline.shared.observe import workers
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.shared.platform.redis_client import (
    colocated,
    get_many,
    is_cluster,
    publish_many,
    used_memory,
)
from jobline.shared.security import key_rate_limit
from jobline.testing import wait_until

_prefixes = itertools.count(1)


def _local(cluster: ValkeyCluster | ExternalCluster) -> ValkeyCluster:
    if not isinstance(cluster, ValkeyCluster):
        pytest.skip("fault injection needs the local cluster (REDIS_CLUSTER_URL is external)")
    return cluster


@pytest.fixture
async def rc(valkey_cluster: ValkeyCluster | ExternalCluster) -> AsyncIterator[RedisCluster]:
    client = RedisCluster.from_url(valkey_cluster.url)
    await client.initialize()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def cdeps(settings: Settings, rc: RedisCluster,
                valkey_cluster: ValkeyCluster | ExternalCluster) -> AsyncIterator[Deps]:
    """Deps on the test's database and the cluster, under a key prefix of the test's own,
    opened like every process opens them (``connect`` detects the cluster)."""
    prefix = f"c{os.getpid()}x{next(_prefixes)}"
    d = await connect(settings.with_(redis_url=valkey_cluster.url, redis_prefix=prefix),
                      pool_size=4)
    assert is_cluster(d.redis) and is_cluster(d.dispatch.r)
    try:
        yield d
    finally:
        await d.close()
        # every primary, every key of the prefix (the colocated marker starts with "{")
        stale = [k async for k in rc.scan_iter(match=f"*{prefix}*", count=1000,
                                               target_nodes=RedisCluster.PRIMARIES)]
        if stale:
            await rc.delete(*stale)


def spread(rc: RedisCluster, make: Callable[[str], str], *, nodes: int = 3) -> list[str]:
    """Short ids whose keys (``make(id)``) fall on ``nodes`` different masters, one each."""
    by_node: dict[str, str] = {}
    for i in itertools.count():
        ident = f"w{i}"
        by_node.setdefault(rc.get_node_from_key(make(ident)).name, ident)
        if len(by_node) >= nodes:
            return sorted(by_node.values())
    raise AssertionError("unreachable")


# -- the worker registry --------------------------------------------------------------------------


async def test_worker_registry_registers_lists_and_expires_across_slots(
        cdeps: Deps, rc: RedisCluster) -> None:
    p = cdeps.dispatch.prefix
    ids = spread(rc, lambda i: workers.worker_key(p, i))
    for i in ids:
        await workers.register_worker(cdeps, {"id": i, "group": "g", "concurrency": 2}, 60_000)
    listed = await workers.list_workers(cdeps)
    assert [w["id"] for w in listed] == ids
    assert {w["concurrency"] for w in listed} == {2}

    await workers.deregister_worker(cdeps, ids[0])
    assert [w["id"] for w in await workers.list_workers(cdeps)] == ids[1:]

    # a heartbeat key with a short TTL expires by itself; listing prunes its id from the set
    await workers.register_worker(cdeps, {"id": ids[0], "group": "g"}, 150)

    async def gone() -> bool:
        return ids[0] not in [w["id"] for w in await workers.list_workers(cdeps)]

    await wait_until(gone, timeout=30, message="the short-lived worker to expire")
    members = {m.decode() for m in await rc.smembers(workers.live_set_key(p))}
    assert members == set(ids[1:])


async def test_lost_worker_sweep_reads_heartbeats_on_every_shard(cdeps: Deps,
                                                                 rc: RedisCluster) -> None:
    p = cdeps.dispatch.prefix
    ids = spread(rc, lambda i: workers.worker_key(p, i))
    for i in ids:
        await worker_events.worker_started(cdeps, i, {"group": "g"})
    for i in ids[1:]:  # the first never heartbeats: it is lost
        await workers.register_worker(cdeps, {"id": i}, 60_000)
    assert await worker_events.sweep_lost_workers(cdeps) == [ids[0]]
    assert await worker_events.sweep_lost_workers(cdeps) == []  # reported once
    types = [r["type"] for r in await cdeps.pool.fetch(
        "SELECT type FROM job_events WHERE type LIKE 'workers.%' ORDER BY seq")]
    assert types.count("workers.heartbeat_lost") == 1


# -- fleet commands -------------------------------------------------------------------------------


async def test_fleet_commands_logs_and_vanished_workers(cdeps: Deps, rc: RedisCluster) -> None:
    p = cdeps.dispatch.prefix
    ids = spread(rc, lambda i: workers.stopped_key(p, i))
    target = ids[0]
    pubsub = rc.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(cancellation.channel(p, target))
        await control.send(cdeps, target, "quiet")
        msg = await _next_message(pubsub)
        assert msg == control.NUDGE.encode()
    finally:
        await pubsub.aclose()
    assert await control.command_for(cdeps, target) == "quiet"
    await control.send(cdeps, ids[1], "restart")
    assert await control.all_commands(cdeps) == {target: "quiet", ids[1]: "restart"}
    await control.send(cdeps, target, "resume")
    assert await control.command_for(cdeps, target) is None

    await control.push_logs(cdeps, target, [f"line {n}" for n in range(5)])
    assert await control.read_logs(cdeps, target, 2) == ["line 3", "line 4"]

    # all three seen alive; then the first stops cleanly, the second crashes, the third lives
    await control.note_seen(cdeps, {i: "grp" for i in ids})
    await control.mark_stopped(cdeps, ids[0])
    gone = await control.vanished(cdeps, live={ids[2]})
    assert gone == {ids[0]: ("grp", True), ids[1]: ("grp", False)}
    assert await control.vanished(cdeps, live={ids[2]}) == {}  # accounted for once
    assert await control.all_commands(cdeps) == {}  # the crashed one's restart is dropped


async def _next_message(pubsub: Any, timeout: float = 30.0) -> Any:
    async def one() -> Any:
        async for m in pubsub.listen():
            if m.get("type") == "message":
                return m["data"]
        return None

    return await asyncio.wait_for(one(), timeout)


# -- pub/sub: cancel signals and progress ---------------------------------------------------------


async def test_cancel_signal_reaches_workers_subscribed_on_every_node(cdeps: Deps,
                                                                      rc: RedisCluster) -> None:
    p = cdeps.dispatch.prefix
    ids = spread(rc, lambda i: cancellation.channel(p, i))
    subs = []
    try:
        for i in ids:
            s = rc.pubsub(ignore_subscribe_messages=True)
            await s.subscribe(cancellation.channel(p, i))
            subs.append(s)
        # the channels' nodes differ; the PUBLISH goes to whichever node the client picks
        assert len({s.get_pubsub_node().name for s in subs}) == 3
        jobs = [uuid.uuid4() for _ in ids]
        for i, j in zip(ids, jobs, strict=True):
            await cancellation.signal(cdeps, i, j)
        got = [await _next_message(s) for s in subs]
        assert got == [str(j).encode() for j in jobs]
    finally:
        for s in subs:
            await s.aclose()


async def test_progress_is_announced_to_subscribers_on_every_node(
        cdeps: Deps, rc: RedisCluster) -> None:
    """Running jobs (submitted and claimed through the cluster) report progress; the subscriber
    of one job per master hears its report."""
    # Job ids are random, so their channels' slots are too: 12 jobs miss one of 3 masters about
    # 2% of the time. Add running jobs until every master has one (bounded, never a retry of the
    # assertion itself).
    by_node: dict[str, Any] = {}
    for _ in range(20):
        await _running_jobs(cdeps, 12)
        rows = await cdeps.pool.fetch(
            "SELECT id, lease_token FROM jobs WHERE status = 'processing'")
        for r in rows:
            by_node.setdefault(rc.get_node_from_key(
                progress.channel(cdeps.dispatch.prefix, r["id"])).name, r)
        if len(by_node) == 3:
            break
    assert len(by_node) == 3, "240 jobs' channels should cover the 3 masters"
    picked = list(by_node.values())
    streams = [progress.updates(cdeps, r["id"]) for r in picked]
    try:
        for s in streams:
            assert await anext(s) is None  # subscribed
        written = await progress.record(cdeps, [
            ProgressReport(r["id"], r["lease_token"], fraction=0.5, message=f"half {n}")
            for n, r in enumerate(picked)])
        assert sorted(written) == sorted(r["id"] for r in picked)
        for s in streams:
            await asyncio.wait_for(anext(s), 30)  # the announcement
        stored = await progress.get_progress(cdeps, picked[2]["id"])
        assert stored is not None and stored.message == "half 2"
    finally:
        for s in streams:
            await s.aclose()


async def _running_jobs(deps: Deps, n: int) -> None:
    from jobline.shared.core import jobs
    from jobline.shared.core.models import JobSpec

    await jobs.submit_many(deps, [JobSpec(queue="cq", job_type="t", payload={})
                                  for _ in range(n)])
    claimed = await jobs.claim(deps, "w-test", ["cq"], n)
    assert len(claimed) == n


async def test_publish_many_one_round_trip_on_both_clients(rc: RedisCluster) -> None:
    channels = spread(rc, lambda c: f"pm:{c}")
    s = rc.pubsub(ignore_subscribe_messages=True)
    try:
        await s.subscribe(*[f"pm:{c}" for c in channels])
        await publish_many(rc, [(f"pm:{c}", c) for c in channels])
        got = {await _next_message(s) for _ in channels}
        assert got == {c.encode() for c in channels}
    finally:
        await s.aclose()


# -- the Redis Streams event bus ------------------------------------------------------------------


def _events(n: int) -> list[Event]:
    return [Event(id=uuid.uuid4(), type="jobs.completed", time_ms=1_700_000_000_000 + i,
                  job_id=uuid.uuid4(), queue="cq", seq=i + 1) for i in range(n)]


async def test_event_bus_publishes_and_consumes_with_a_group(
        cdeps: Deps) -> None:
    bus = RedisStreamsBus(cdeps.settings.redis_url or "", cdeps.dispatch.prefix)
    try:
        assert is_cluster(bus.redis)
        consumer = await bus.consumer("audit", "a1")
        try:
            # nothing there: a blocking read returns empty after its timeout...
            assert await consumer.fetch(10, 0.05) == []
            # ...and one under way wakes up for a publish
            waiting = asyncio.create_task(consumer.fetch(10, 30))
            await asyncio.sleep(0)
            events = _events(5)
            await bus.publish(events)
            got = await asyncio.wait_for(waiting, 30)
            while len(got) < 5:
                got += await consumer.fetch(10, 1)
            assert [d.event.id for d in got] == [e.id for e in events]
            [lag] = await bus.lag(["audit"])
            assert (lag.lag, lag.pending) == (0, 5)
            await consumer.ack(got)
            [lag] = await bus.lag(["audit"])
            assert lag.pending == 0
        finally:
            await consumer.close()
        # a second consumer of the same group takes over what the first left unacknowledged
        first = await bus.consumer("billing", "b1")
        second = await bus.consumer("billing", "b2")
        try:
            got = await first.fetch(10, 1)
            assert len(got) == 5
            await second.take_over()
            again = await second.fetch(10, 1)
            assert {d.event.id for d in again} == {d.event.id for d in got}
        finally:
            await first.close()
            await second.close()
    finally:
        await bus.close()


# -- per-key rate limit, backpressure, samples, readiness -----------------------------------------


async def test_key_rate_limit_buckets_on_different_shards(cdeps: Deps, rc: RedisCluster) -> None:
    keys = spread(rc, lambda k: key_rate_limit.bucket_key(cdeps, k))
    rate = key_rate_limit.KeyRate(limit=3, window_ms=60_000)
    for k in keys:
        for _ in range(3):
            await key_rate_limit.admit(cdeps, k, rate)
        with pytest.raises(key_rate_limit.RateLimited) as refused:
            await key_rate_limit.admit(cdeps, k, rate)
        assert refused.value.retry_after_s >= 1


async def test_backpressure_measures_queues_on_every_shard(cdeps: Deps,
                                                           rc: RedisCluster) -> None:
    d = cdeps.dispatch
    queues = spread(rc, lambda q: d.keys(q).ready)
    for n, q in enumerate(queues, start=1):
        await rc.zadd(d.keys(q).ready, {f"j{i}": i for i in range(n)})
        await rc.zadd(d.keys(q).delayed, {"later": 1})
    assert await backpressure.queue_depths(cdeps, queues) == {
        q: n + 1 for n, q in enumerate(queues, start=1)}


async def test_get_many_and_used_memory(rc: RedisCluster, cdeps: Deps) -> None:
    p = cdeps.dispatch.prefix
    keys = [f"{p}:gm:{i}" for i in spread(rc, lambda i: f"{p}:gm:{i}")]
    await rc.set(keys[0], "a")
    await rc.set(keys[2], "c")
    assert await get_many(rc, keys) == [b"a", None, b"c"]
    per_node = await rc.info("memory", target_nodes=RedisCluster.PRIMARIES)
    total = await used_memory(rc)
    # other tests' processes may write meanwhile: the two readings agree within 5 %
    assert total == pytest.approx(sum(int(i["used_memory"]) for i in per_node.values()), rel=0.05)
    assert total is not None and total > max(int(i["used_memory"]) for i in per_node.values())


async def test_readiness_probe_reaches_the_cluster(cdeps: Deps) -> None:
    from jobline.api.app import create_app
    from jobline.testing import serve_app

    async for http in serve_app(create_app(cdeps.settings, deps=cdeps), role=None):
        r = await http.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json() == {"status": "ok", "postgres": "ok", "redis": "ok"}


def test_colocated_keys_share_the_slot() -> None:
    assert colocated("jl:events", ":alive") == "{jl:events}:alive"
    assert colocated("jl:{q}:ready", ":x") == "jl:{q}:ready:x"
    with pytest.raises(ValueError):
        colocated("a{}b", ":x")


# -- faults: a flushed shard, a master killed ----------------------------------------------------


async def test_event_bus_sees_its_stream_lost_when_its_shard_is_flushed(
        cdeps: Deps, rc: RedisCluster,
        valkey_cluster: ValkeyCluster | ExternalCluster) -> None:
    cluster = _local(valkey_cluster)
    bus = RedisStreamsBus(cdeps.settings.redis_url or "", cdeps.dispatch.prefix)
    try:
        await bus.publish(_events(3))
        await bus.mark_state()
        assert not await bus.lost_state()
        assert rc.keyslot(bus.marker) == rc.keyslot(bus.stream)
        await asyncio.to_thread(cluster.flush_shard, bus.stream)
        assert await rc.exists(bus.stream) == 0
        assert await bus.lost_state()  # so the relay replays the outbox's retained window
    finally:
        await bus.close()


async def test_master_failover_registry_and_progress_subscription_recover(
        cdeps: Deps, rc: RedisCluster,
        valkey_cluster: ValkeyCluster | ExternalCluster) -> None:
    """SIGKILL the master serving a running job's progress channel (and a worker's key): its
    replica takes over; the registry answers again and the progress subscription renews itself
    and hears the next report. Records the failover time in the test report."""
    cluster = _local(valkey_cluster)
    await _running_jobs(cdeps, 1)
    row = await cdeps.pool.fetchrow("SELECT id, lease_token FROM jobs WHERE status = 'processing'")
    assert row is not None
    p = cdeps.dispatch.prefix
    chan = progress.channel(p, row["id"])
    wid = next(i for i in (f"w{n}" for n in itertools.count())
               if rc.get_node_from_key(workers.worker_key(p, i)).name
               == rc.get_node_from_key(chan).name)
    await workers.register_worker(cdeps, {"id": wid}, 600_000)

    heard: asyncio.Queue[None] = asyncio.Queue()
    stream = progress.updates(cdeps, row["id"])

    async def listen() -> None:
        async for _ in stream:
            heard.put_nowait(None)

    task = asyncio.create_task(listen())
    try:
        await asyncio.wait_for(heard.get(), 30)  # subscribed
        killed = await asyncio.to_thread(cluster.kill_master, chan)
        # not ready while a shard has no master (a failover takes > cluster-node-timeout, 2 s,
        # and the probe gives up after PROBE_TIMEOUT_S = 2 s); a PING of one node would say ok
        assert (await health._check_redis(cdeps)).startswith("down")
        seconds = await asyncio.to_thread(cluster.wait_failover, 60)
        print(f"\nvalkey cluster failover: master {killed} replaced in {seconds:.2f} s")

        async def registry_back() -> bool:
            try:
                return [w["id"] for w in await workers.list_workers(cdeps)] == [wid]
            except Exception:
                return False

        await wait_until(registry_back, timeout=60, message="the registry after failover")
        await asyncio.wait_for(heard.get(), 60)  # the renewed subscription yields once

        async def announced() -> bool:
            await progress.record(cdeps, [ProgressReport(row["id"], row["lease_token"],
                                                         fraction=0.9)])
            try:
                await asyncio.wait_for(heard.get(), 0.5)
            except TimeoutError:
                return False
            return True

        await wait_until(announced, timeout=60, message="a progress report after failover")
        await asyncio.to_thread(cluster.restart_node, killed)
        assert next(n for n in cluster.nodes if n.port == killed).role == "replica"
        assert await health._check_redis(cdeps) == "ok"  # every primary answers again
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await stream.aclose()
