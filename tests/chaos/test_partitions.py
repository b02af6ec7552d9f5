"""Issue 20, "many hosts, real partitions": Jobline's processes on six hosts (network
namespaces, tests/chaos/netns.py) and real partitions between them: packets silently dropped,
so a cut-off process sees timeouts, not refused connections.

Each scenario is judged by the chaos checker (lost = 0, no duplicate completion, executions <=
attempts, nothing stuck) and records its figures for docs/reliability.md (``make chaos``).
Waits are for observable state; the only timed things are the faults' own durations.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaos.checker import Verdict, assert_total_queue, check, executions, now_ms, record
from chaos.conftest import LEASE_MS, SCALE, SWEEP_MS, ChaosProcs
from chaos.handlers import gate
from chaos.netns import (
    API_PORT,
    NetnsUnavailable,
    NetPostgres,
    NetValkey,
    Topology,
    remove_stale_dirs,
    require_netns,
)
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.shared.security.auth import create_key
from jobline.testing import wait_until

pytestmark = pytest.mark.slow

TEMPLATE = "jobline_template"
_db_counter = itertools.count(1)


@dataclass
class Net:
    topo: Topology
    pg: NetPostgres
    valkey: NetValkey


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    """The six hosts, PostgreSQL on ``pg`` and Valkey on ``valkey`` with a migrated template
    database; torn down (processes, namespaces, bridge, data) whatever happens."""
    try:
        require_netns()
    except NetnsUnavailable as e:
        pytest.fail(str(e), pytrace=False)
    topo = Topology()
    parent = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    remove_stale_dirs(parent)
    pg = NetPostgres(topo, Path(tempfile.mkdtemp(prefix=f"jobline-netns-pg-{os.getpid()}-",
                                                 dir=parent)))
    valkey = NetValkey(topo, tmp_path_factory.mktemp("netns-valkey"))
    try:
        topo.create()
        pg.start()
        valkey.start()
        pg.psql(f'CREATE DATABASE "{TEMPLATE}"')
        subprocess.run([sys.executable, "-m", "jobline", "migrate"], check=True, timeout=300,
                       capture_output=True, env={**os.environ, "DATABASE_URL": pg.url(TEMPLATE),
                                                 "REDIS_URL": valkey.url})
        pg.psql(f'ALTER DATABASE "{TEMPLATE}" WITH is_template true')
        yield Net(topo, pg, valkey)
    finally:
        valkey.stop()
        pg.stop()
        topo.destroy()


@pytest.fixture
def settings(net: Net, tmp_path: Path) -> Iterator[Settings]:
    """This test's own database (cloned from the template) and Redis prefix on the hosts'
    stores; every cut is healed afterwards."""
    name = f"n_{os.getpid()}_{next(_db_counter)}"
    net.pg.psql(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    try:
        yield Settings().with_(database_url=net.pg.url(name), redis_url=net.valkey.url,
                               redis_prefix=f"n{os.getpid()}x{name}", home=tmp_path)
    finally:
        net.topo.heal()
        net.pg.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)


class NetProcs(ChaosProcs):
    """ChaosProcs whose processes each run in a host of the topology."""

    def __init__(self, settings: Settings, home: Path, topo: Topology) -> None:
        super().__init__(settings, home)
        self.topo = topo

    def on(self, host: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = self.home / "logs" / f"{len(self.started):02d}-{host}-{args[0]}.log"
        with log.open("ab") as fh:
            p = subprocess.Popen([*self.topo.exec_prefix(host), sys.executable, "-m", "jobline",
                                  *args], env={**self.env, **env}, start_new_session=True,
                                 stdout=fh, stderr=subprocess.STDOUT)
        self.started.append(p)
        return p

    def worker_on(self, host: str, *extra: str, **env: str) -> subprocess.Popen[bytes]:
        return self.on(host, "worker", "--app", "jobline.demo", "--app", "chaos.handlers",
                       *extra, **env)

    @property
    def api_url(self) -> str:
        return f"http://{self.topo.addr('api')}:{API_PORT}"

    async def api_on(self) -> subprocess.Popen[bytes]:
        p = self.on("api", "api", "--port", str(API_PORT), JOBLINE_HOST=self.topo.addr("api"))
        async with httpx.AsyncClient(base_url=self.api_url, trust_env=False) as c:

            async def up() -> bool:
                try:
                    return (await c.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(up, timeout=60, message="the API on its host")
        return p


@pytest.fixture
def procs(settings: Settings, net: Net, tmp_path: Path) -> Iterator[NetProcs]:
    p = NetProcs(settings, tmp_path, net.topo)
    yield p
    p.stop_all()


async def counts(deps: Deps) -> dict[str, int]:
    return {r["status"]: r["n"] for r in await deps.pool.fetch(
        "SELECT status, count(*) AS n FROM jobs GROUP BY status")}


async def drained(deps: Deps, timeout: float = 120) -> None:
    async def done() -> bool:
        c = await counts(deps)
        return bool(c) and set(c) <= {"completed", "dead_letter", "cancelled", "failed"}

    await wait_until(done, timeout=timeout, message="queue drained")


async def judge(deps: Deps, home: Path, scenario: str, acked: list[str], faults: str,
                faults_ms: list[int], **extra: object) -> Verdict:
    v = await check(deps, home, acked, faults_ms=faults_ms)
    record(scenario, v, faults, **extra)
    assert_total_queue(v, LEASE_MS, SWEEP_MS)
    return v


def client(procs: NetProcs, key: str, timeout: float = 30.0) -> httpx.AsyncClient:
    # trust_env=False: a proxy from the environment must not see the hosts' private addresses
    return httpx.AsyncClient(base_url=procs.api_url, timeout=timeout, trust_env=False,
                             headers={"X-Api-Key": key})


def work(cid: str, ms: int) -> dict[str, Any]:
    return {"queue": "default", "jobType": "chaos.work", "payload": {"cid": cid, "ms": ms}}


# a -------------------------------------------------------------------------------------------


async def test_p1_worker_cut_from_the_stores_mid_job_is_fenced(
        deps: Deps, net: Net, procs: NetProcs, tmp_path: Path) -> None:
    """w1 loses PostgreSQL and Valkey while it runs a job: the lease lapses, w2 re-runs and
    completes it; after the heal w1 finishes too, and its completion is refused by the
    fencing token. One completed attempt, two executions (at-least-once)."""
    topo, cid = net.topo, "fenced"
    await jobs.submit_many(deps, [JobSpec(queue="default", job_type="chaos.gated",
                                          payload={"cid": cid})])
    procs.on("sched", "scheduler")
    w1 = procs.worker_on("w1", "--concurrency", "1")

    async def held_by_w1() -> bool:
        return await deps.pool.fetchval("SELECT status FROM jobs") == "processing"

    await wait_until(held_by_w1, timeout=60, message="w1 holds the job")
    topo.cut_many("w1", ["pg", "valkey"])
    cut_at = now_ms()
    assert not topo.reachable("w1", "pg") and not topo.reachable("w1", "valkey")
    assert topo.reachable("w2", "pg"), "the cut is selective"
    procs.worker_on("w2", "--concurrency", "1")

    async def rerun_by_w2() -> int | None:
        r = await deps.pool.fetchrow(
            """SELECT j.status, j.lease_token,
                      (SELECT count(*) FROM job_attempts a WHERE a.outcome = 'lease_expired')
                        AS reaped FROM jobs j""")
        ok = r is not None and r["status"] == "processing" and r["reaped"] == 1
        return int(r["lease_token"]) if ok else None  # type: ignore[index]

    token = await wait_until(rerun_by_w2, timeout=60, message="lease reaped, w2 re-runs the job")
    (tmp_path / gate(cid, token)).touch()

    async def completed() -> bool:
        return await counts(deps) == {"completed": 1}

    await wait_until(completed, timeout=60, message="w2 completed the job")
    winner = await deps.pool.fetch(
        "SELECT lease_token, worker_id FROM job_attempts WHERE outcome = 'completed'")
    topo.heal()
    healed_at = now_ms()

    async def w1_back() -> bool:
        # its first heartbeat after the heal learns the lease is gone: w1 reaches the stores
        return "lost (cancelled or reaped)" in procs.logs(w1)

    await wait_until(w1_back, timeout=90, message="w1's heartbeat after the heal")
    (tmp_path / gate(cid, 1)).touch()  # now w1's handler finishes, late

    async def fenced() -> bool:
        return "rejected (lease lost)" in procs.logs(w1)

    await wait_until(fenced, timeout=60, message="w1's late completion refused")
    back_ms = now_ms() - healed_at
    v = await judge(deps, tmp_path, "P1 worker cut from PostgreSQL + Valkey mid-job", [cid],
                    f"w1 cut from pg + valkey; late completion fenced {back_ms} ms after heal",
                    [cut_at])
    assert executions(tmp_path)[cid] == 2  # both runs performed the side effect...
    after = await deps.pool.fetch(
        "SELECT lease_token, worker_id FROM job_attempts WHERE outcome = 'completed'")
    assert [dict(r) for r in after] == [dict(r) for r in winner]  # ...one completion stands
    attempts = await deps.pool.fetch(
        "SELECT lease_token, outcome FROM job_attempts ORDER BY lease_token")
    assert [(r["lease_token"], r["outcome"]) for r in attempts] == [
        (1, "lease_expired"), (token, "completed")]
    events = await deps.pool.fetch("SELECT type FROM job_events WHERE type LIKE 'jobs.%'")
    # the outbox (the audit log) records the completion once: the fenced one left no trace
    assert sorted(r["type"] for r in events).count("jobs.completed") == 1, events
    assert len(v.recovery_ms) == 1


# b -------------------------------------------------------------------------------------------


async def test_p2_api_cut_from_valkey_commits_and_from_postgres_answers_503(
        deps: Deps, net: Net, procs: NetProcs, tmp_path: Path) -> None:
    topo = net.topo
    procs.on("sched", "scheduler")
    procs.worker_on("w1", "--concurrency", "4")
    await procs.api_on()
    _, key = await create_key(deps, "admin", "partitions")
    n = 10 * SCALE
    async with client(procs, key) as c:
        # API | Valkey: the submit commits in PostgreSQL and is acknowledged; dispatch is the
        # scheduler's sweep's job (it still reaches Valkey)
        topo.cut("api", "valkey")
        cut_at = now_ms()
        cids = [f"nv-{i}" for i in range(n)]
        t0 = time.monotonic()
        # the client's 30 s timeout is the hang bound: answered later is not answered
        answers = await asyncio.gather(*(c.post("/api/v1/jobs", json=work(cid, 10))
                                         for cid in cids))
        submit_s = time.monotonic() - t0
        assert [r.status_code for r in answers] == [201] * n, [r.text for r in answers[:3]]
        stored = await deps.pool.fetchval(
            "SELECT count(*) FROM jobs WHERE payload->>'cid' = ANY($1)", cids)
        assert stored == n

        async def all_done() -> bool:
            return await counts(deps) == {"completed": n}

        await wait_until(all_done, timeout=90, message="submits dispatched by the sweep")
        dispatched_ms = now_ms() - cut_at
        assert topo.cuts == {frozenset(("api", "valkey"))}  # done while still partitioned
        topo.heal()

        # API | PostgreSQL: a prompt 503 with Retry-After, nothing stored
        topo.cut("api", "pg")
        t0 = time.monotonic()
        refused = await asyncio.gather(*(c.post("/api/v1/jobs", json=work(f"np-{i}", 10))
                                         for i in range(3)))
        answer_503_ms = int((time.monotonic() - t0) * 1000)
        assert [r.status_code for r in refused] == [503] * 3, [r.text for r in refused]
        assert all("retry-after" in r.headers for r in refused)
        assert all(r.json()["error"]["code"] == "unavailable" for r in refused), refused[0].text
        topo.heal()

        async def answers_again() -> bool:
            r = await c.post("/api/v1/jobs", json=work("after-heal", 10))
            return r.status_code == 201

        await wait_until(answers_again, timeout=90, message="the API submits after the heal")
    await drained(deps)
    half = await deps.pool.fetchval("SELECT count(*) FROM jobs WHERE payload->>'cid' LIKE 'np-%'")
    assert half == 0, "a submit answered 503 must not be stored"
    await judge(deps, tmp_path, "P2 API cut from Valkey, then from PostgreSQL", [*cids, "after-heal"],
                f"api cut from valkey: {n} submits 201 in {submit_s:.1f} s, all done "
                f"{dispatched_ms} ms after the cut; api cut from pg: 3 x 503 in {answer_503_ms} "
                "ms, 0 stored", [cut_at],
                dispatched_ms=dispatched_ms, answer_503_ms=answer_503_ms)


# c -------------------------------------------------------------------------------------------


async def test_p3_partition_healed_everything_completes(
        deps: Deps, net: Net, procs: NetProcs, tmp_path: Path) -> None:
    """Load before and during a partition (w1 isolated from every host, the API cut from
    Valkey); after the heal every acknowledged job completes exactly once."""
    topo = net.topo
    procs.on("sched", "scheduler")
    procs.worker_on("w1", "--concurrency", "4")
    procs.worker_on("w2", "--concurrency", "4")
    await procs.api_on()
    _, key = await create_key(deps, "admin", "partitions")
    acked: list[str] = []
    unanswered = 0
    async with client(procs, key, timeout=20) as c:

        async def submit(prefix: str, n: int, ms: int = 100) -> None:
            nonlocal unanswered
            for i in range(n):
                try:
                    r = await c.post("/api/v1/jobs", json=work(f"{prefix}-{i}", ms))
                except httpx.TransportError:
                    unanswered += 1  # outcome unknown: not acknowledged, so not judged
                    continue
                if r.status_code == 201:
                    acked.append(f"{prefix}-{i}")

        # 1 s jobs, more than the 8 slots: w1 still holds some when it is cut off
        before = 20 * SCALE
        await asyncio.gather(*(submit(f"pre{k}", before // 4, ms=1_000) for k in range(4)))

        async def both_busy() -> bool:
            return bool(await deps.pool.fetchval(
                """SELECT count(DISTINCT worker_id) = 2 FROM jobs
                    WHERE status = 'processing'"""))

        await wait_until(both_busy, timeout=60, message="w1 and w2 both running jobs")
        topo.isolate("w1")
        topo.cut("api", "valkey")
        cut_at = now_ms()
        during = 10 * SCALE
        # concurrent clients: their submits share the group commit's flushes, each of which
        # waits out the API's Redis timeout before answering (committed, dispatch deferred)
        await asyncio.gather(*(submit(f"mid{k}", during // 5) for k in range(5)))

        async def w1_reaped() -> bool:
            return bool(await deps.pool.fetchval(
                "SELECT count(*) FROM job_attempts WHERE outcome = 'lease_expired'"))

        await wait_until(w1_reaped, timeout=60, message="w1's leases reaped")
        topo.heal()
        healed_at = now_ms()
        await submit("post", 5)
    await drained(deps)
    drained_ms = now_ms() - healed_at
    v = await judge(deps, tmp_path, "P3 partition (w1 isolated, API cut from Valkey) healed", acked,
                    f"w1 isolated + api cut from valkey; {len(acked)} acked ({unanswered} unanswered), "
                    f"drained {drained_ms} ms "
                    f"after the heal", [cut_at], drained_after_heal_ms=drained_ms)
    assert len(acked) == before + during + 5 - unanswered
    assert v.recovery_ms, "w1's leases were reaped"
