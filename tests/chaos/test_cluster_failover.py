"""Chaos on a Redis Cluster: a Valkey master SIGKILLed under load (issue 20).

Real jobline processes (a scheduler and workers) run against the session's local Valkey Cluster
(3 masters + 3 replicas, ``valkey_cluster``) with ``REDIS_URL`` naming one of its nodes, over
queues spread across the slot groups, while the test keeps submitting. Mid-load the master serving
one queue's slot group is SIGKILLed: its replica must be promoted, and the checker must find
nothing lost, nothing completed twice, no execution beyond the attempts Postgres counted, every
job finished. The failover time (kill -> replica serving the slots, cluster ok) and the time until
a job of the killed shard's queues was claimed again are recorded with the chaos results
(``JOBLINE_CHAOS_RESULTS``, ``make chaos``) and printed.

``make test`` runs the small scenario; the larger one is ``chaos_full`` (``make chaos``).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from conftest import ExternalCluster
from redis.asyncio.cluster import RedisCluster

from chaos.checker import assert_total_queue, check, now_ms, record, summary
from chaos.conftest import LEASE_MS, SCALE, SWEEP_MS, ChaosProcs
from jobline.local.valkey_cluster import ValkeyCluster
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.shared.platform.errors import Unavailable
from jobline.shared.platform.redis_client import UNAVAILABLE_ERRORS, is_cluster
from jobline.testing import wait_until

#: The waits below (load, failover, submissions, drain) are each bounded with a message naming
#: what did not happen; together they exceed the suite's 120 s default, which would otherwise end
#: a slow recovery (a busy CI machine) with a bare timeout instead of that message.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]

#: Queues of several slot groups (so of several masters); the handler serves any queue.
QUEUES = [f"cf{i}" for i in range(8)]
_prefixes = itertools.count(1)
#: A claim whose worker records it this soon after the kill was served before the kill.
IN_FLIGHT_MS = 500


def work(cid: str, queue: str, ms: int) -> JobSpec:
    return JobSpec(queue=queue, job_type="chaos.work", payload={"cid": cid, "ms": ms},
                   max_attempts=25)


async def counts(deps: Deps) -> dict[str, int]:
    return {r["status"]: r["n"] for r in await deps.pool.fetch(
        "SELECT status, count(*) AS n FROM jobs GROUP BY status")}


class Submitter:
    """Keeps submitting small batches over every queue from the test process; a batch counts as
    acknowledged once ``submit_many`` returned (its Redis mirror may have failed: Postgres has
    committed it, so it must still run)."""

    def __init__(self, deps: Deps, ms: int) -> None:
        self.deps, self.ms = deps, ms
        self.acked: list[str] = []
        self.refused = 0
        self.last_error: BaseException | None = None
        self._n = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            batch = []
            for q in QUEUES[:4]:
                self._n += 1
                batch.append((f"live-{self._n}", q))
            try:
                await jobs.submit_many(self.deps, [work(c, q, self.ms) for c, q in batch])
            except (Unavailable, *UNAVAILABLE_ERRORS) as e:
                self.refused += 1  # not acknowledged, so not judged
                self.last_error = e
            else:
                self.acked += [c for c, _ in batch]
            await asyncio.sleep(0.05)  # client think time, not a state wait

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


async def _delete_prefix(url: str, prefix: str) -> None:
    rc = RedisCluster.from_url(url)
    try:
        for pattern in (f"{prefix}*", f"{{{prefix}*"):
            keys = [k async for k in rc.scan_iter(match=pattern, count=1000,
                                                  target_nodes=RedisCluster.PRIMARIES)]
            for k in keys:
                await rc.unlink(k)
    finally:
        await rc.aclose()


async def kill_a_master_under_load(settings: Settings, tmp_path: Path,
                                   valkey_cluster: ValkeyCluster | ExternalCluster, *,
                                   scenario: str, n: int, workers: int) -> None:
    if not isinstance(valkey_cluster, ValkeyCluster):
        pytest.skip("killing a master needs the local cluster (REDIS_CLUSTER_URL is external)")
    cluster = valkey_cluster
    prefix = f"cf{os.getpid()}x{next(_prefixes)}"
    s = settings.with_(redis_url=cluster.url, redis_prefix=prefix)
    deps = await connect(s)
    procs = ChaosProcs(s, tmp_path)
    submitter = Submitter(deps, ms=20)
    killed: int | None = None
    try:
        assert is_cluster(deps.redis), "REDIS_URL at a cluster node must give a cluster client"
        target = deps.dispatch.keys(QUEUES[0]).ready
        # the queues whose slot group the killed master serves: they must resume after it
        masters = {q: await asyncio.to_thread(cluster.master_for, deps.dispatch.keys(q).ready)
                   for q in QUEUES}
        assert len(set(masters.values())) >= 2, masters
        cids = [f"pre-{i}" for i in range(n)]
        await jobs.submit_many(deps, [work(c, QUEUES[i % len(QUEUES)], 50)
                                      for i, c in enumerate(cids)])
        procs.start("scheduler")
        for _ in range(workers):
            procs.worker("--concurrency", "4")
        submitter.start()

        async def busy() -> bool:
            c = await counts(deps)
            return c.get("completed", 0) >= n // 4 and c.get("processing", 0) >= 2

        await wait_until(busy, timeout=90, message="load running before the kill")
        killed_at = now_ms()
        killed = await asyncio.to_thread(cluster.kill_master, target)
        shard_queues = [q for q, m in masters.items() if m == killed]
        failover_s = await asyncio.to_thread(cluster.wait_failover, 60)
        # keep submitting for a moment on the new topology, then let the system drain
        more = len(submitter.acked) + 40

        async def submitted_after() -> bool:
            return len(submitter.acked) >= more

        async def after_kill(what: Callable[[], Awaitable[bool]], timeout: float,
                             message: str) -> None:
            # a recovery that does not come must say where it stuck: the tmp dir with the
            # processes' logs is gone by the time anyone reads a CI log
            try:
                await wait_until(what, timeout=timeout, message=message)
            except AssertionError as e:
                tails = "\n".join(f"--- {p.args!r}\n{procs.logs(p)[-3000:]}"
                                  for p in procs.started)
                raise AssertionError(
                    f"{e}; after the kill of :{killed}: {submitter.refused} submit batches "
                    f"refused (last: {submitter.last_error!r}), jobs by status "
                    f"{await counts(deps)}\n{tails}") from None

        await after_kill(submitted_after, 60, "submissions after the failover")
        await submitter.stop()
        acked = cids + submitter.acked
        t0 = time.monotonic()

        async def drained() -> bool:
            c = await counts(deps)
            return bool(c) and set(c) <= {"completed", "dead_letter", "cancelled", "failed"}

        await after_kill(drained, 180, "queue drained after the failover")
        drain_s = time.monotonic() - t0
        # dispatch back on that shard: the first job of its queues claimed after the kill (a
        # claim needs the shard's master; a completion of a job claimed before does not). Claims
        # that started within IN_FLIGHT_MS of the kill were answered before it landed: the
        # replica cannot be serving that soon (failure detection alone takes 2 s).
        resumed = await deps.pool.fetchval(
            """SELECT min(a.started_at) FROM job_attempts a JOIN jobs j ON j.id = a.job_id
                WHERE a.outcome = 'completed' AND j.queue_name = ANY($1) AND a.started_at > $2""",
            shard_queues, to_dt(killed_at + IN_FLIGHT_MS))
        assert resumed is not None, "no job of the killed shard's queues was claimed afterwards"
        resumed_s = resumed.timestamp() - killed_at / 1000
        v = await check(deps, tmp_path, acked, faults_ms=[killed_at])
        record(scenario, v,
               f"SIGKILL Valkey master :{killed} ({len(shard_queues)} of {len(QUEUES)} queues); "
               f"replica promoted in {failover_s:.1f} s, first claim from its queues after "
               f"{resumed_s:.1f} s; {submitter.refused} submit batches refused",
               failover_s=round(failover_s, 2), resumed_s=round(resumed_s, 2),
               drained_s=round(drain_s, 1))
        print(f"\n{scenario}: {v.jobs} jobs, failover {failover_s:.2f} s, first claim from the "
              f"killed shard's queues after {resumed_s:.2f} s, drained {drain_s:.1f} s later; "
              f"{summary(v)}")
        # A lease cannot be reaped while its shard has no master, so recovery is bounded by the
        # failover on top of lease + sweep (enforced only by `make chaos`, see the checker).
        assert_total_queue(v, LEASE_MS + int(failover_s * 1000), SWEEP_MS)
    finally:
        with_submitter = submitter._task is not None and not submitter._task.done()
        if with_submitter:
            await submitter.stop()
        procs.stop_all()
        await deps.close()
        if killed is not None:
            await asyncio.to_thread(cluster.restart_node, killed)
        await _delete_prefix(cluster.url, prefix)


async def test_cluster_master_sigkilled_under_load(
        settings: Settings, tmp_path: Path,
        valkey_cluster: ValkeyCluster | ExternalCluster) -> None:
    await kill_a_master_under_load(settings, tmp_path, valkey_cluster,
                                   scenario="cluster: SIGKILL a Valkey master under load",
                                   n=80, workers=2)


@pytest.mark.chaos_full
async def test_cluster_master_sigkilled_under_heavy_load(
        settings: Settings, tmp_path: Path,
        valkey_cluster: ValkeyCluster | ExternalCluster) -> None:
    await kill_a_master_under_load(settings, tmp_path, valkey_cluster,
                                   scenario="cluster: SIGKILL a Valkey master, heavy load",
                                   n=200 * SCALE, workers=4)
