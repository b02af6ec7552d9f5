"""Staleness-tolerant reads on a PostgreSQL streaming replica (issue 20, ``DATABASE_READ_URL``).

A real hot standby is started from the session's embedded PostgreSQL with ``pg_basebackup -R``
(same binaries). The tests prove the routing by what each source can see: with the replica's
replay paused, a replica-routed listing shows the old data and reports its lag; past the bound
it falls back to the primary and shows the new data. Writes and claims never go there: the
replica is read-only, so one routed there would fail loudly (the negative control shows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from jobline.api.app import create_app
from jobline.local import EmbeddedPostgres
from jobline.local.process import free_port
from jobline.shared.core import jobs as core
from jobline.shared.core.models import JobSpec
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.shared.retry import dlq
from jobline.testing import drain, serve_app, wait_until
from jobline.worker.registry import Registry

#: What the tests saw, printed at the end of the module (pytest -s) for the report.
MEASURED: dict[str, Any] = {}


@pytest.fixture(scope="module")
def replica(services: Any) -> Iterator[EmbeddedPostgres]:
    """A hot standby of the session's embedded PostgreSQL, streaming from it."""
    if services.postgres is None:
        pytest.skip("needs the session's embedded PostgreSQL to take a base backup from "
                    "(DATABASE_URL / --pg-bin point elsewhere)")
    shm = Path("/dev/shm")
    parent = str(shm) if os.access(shm, os.W_OK) else None
    # conftest's prefix: a killed session's leftover is stopped and removed by the next one
    base = Path(tempfile.mkdtemp(prefix=f"jobline-test-pg-{os.getpid()}-replica-", dir=parent))
    pg = EmbeddedPostgres(base, fast=True)
    try:
        pg.init_replica_of(services.postgres.port)
        pg.start()
        assert pg.psql("SELECT pg_is_in_recovery()") == "t"
        yield pg
    finally:
        with contextlib.suppress(Exception):
            pg.stop()
        shutil.rmtree(base, ignore_errors=True)


def _db(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


@pytest.fixture
def deps_settings(settings: Settings, replica: EmbeddedPostgres) -> Settings:
    # A generous bound: a test lowers it (router.max_lag_ms) to see the fallback.
    return settings.with_(database_read_url=replica.dsn(_db(settings.database_url or "")),
                          read_max_lag_ms=60_000)


@pytest.fixture
async def paused(replica: EmbeddedPostgres) -> AsyncIterator[Any]:
    """``pause()`` stops the replica's replay (until the test ends)."""
    conn = await asyncpg.connect(replica.dsn("postgres"))

    async def pause() -> None:
        await conn.execute("SELECT pg_wal_replay_pause()")

        async def is_paused() -> bool:
            return bool(await conn.fetchval("SELECT pg_get_wal_replay_pause_state() = 'paused'"))

        await wait_until(is_paused, message="replay paused")

    try:
        yield pause
    finally:
        # Resume whatever happened: the next test's CREATE DATABASE must reach the replica.
        await conn.execute("SELECT pg_wal_replay_resume()")
        await conn.close()


async def _on_replica(deps: Deps) -> Any:
    """Wait until the router sends reads to the replica (it has the test's database and is
    within the bound); returns that source."""
    assert deps.reads is not None

    async def ready() -> Any:
        src = await deps.reads.check()  # type: ignore[union-attr]
        return src if src.source == "replica" else None

    return await wait_until(ready, message="reads routed to the replica")


def _spec(queue: str = "rq", job_type: str = "noop", **kw: Any) -> JobSpec:
    return JobSpec(queue=queue, job_type=job_type, payload={}, **kw)


async def _listed(admin: httpx.AsyncClient) -> tuple[set[str], httpx.Response]:
    r = await admin.get("/api/v1/jobs", params={"queue": "rq"})
    assert r.status_code == 200, r.text
    return {j["id"] for j in r.json()["jobs"]}, r


JOBS_AND_SOURCE = """{ jobs(filter: {queue: "rq"}) { edges { node { id } } }
                       readReplica { source lagMs maxLagMs reason } }"""


async def _graphql(admin: httpx.AsyncClient, query: str) -> dict[str, Any]:
    r = await admin.post("/graphql", json={"query": query})
    body = r.json()
    assert r.status_code == 200 and "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


async def test_listing_is_served_by_the_replica_within_the_bound_then_by_the_primary(
        deps: Deps, admin: httpx.AsyncClient, replica: EmbeddedPostgres, paused: Any) -> None:
    assert deps.reads is not None
    a = (await admin.post("/api/v1/jobs", json={"queue": "rq", "jobType": "noop"})).json()
    caught_up = await _on_replica(deps)
    MEASURED["lag_ms_caught_up"] = caught_up.lag_ms
    assert caught_up.lag_ms is not None and caught_up.lag_ms <= 60_000

    async def a_replicated() -> bool:
        ids, r = await _listed(admin)
        return a["jobId"] in ids and r.headers["X-Jobline-Read-Source"] == "replica"

    await wait_until(a_replicated, message="job A listed from the replica")

    # Replay stops: the primary moves on, the replica keeps the old state.
    await paused()
    b = (await admin.post("/api/v1/jobs", json={"queue": "rq", "jobType": "noop"})).json()
    # read-your-own-write stays on the primary: the job just submitted is there
    got = await admin.get(f"/api/v1/jobs/{b['jobId']}")
    assert got.status_code == 200 and "X-Jobline-Read-Source" not in got.headers
    src = await deps.reads.check()
    assert src.source == "replica", src
    ids, r = await _listed(admin)
    assert a["jobId"] in ids and b["jobId"] not in ids  # the replica's (old) view
    assert r.headers["X-Jobline-Read-Source"] == "replica"
    lag_paused = int(r.headers["X-Jobline-Read-Lag-Ms"])
    MEASURED["lag_ms_paused_first_read"] = lag_paused
    assert 0 <= lag_paused <= 60_000
    data = await _graphql(admin, JOBS_AND_SOURCE)
    gql_ids = {e["node"]["id"] for e in data["jobs"]["edges"]}
    assert a["jobId"] in gql_ids and b["jobId"] not in gql_ids
    assert data["readReplica"]["source"] == "replica"
    assert data["readReplica"]["maxLagMs"] == 60_000 and data["readReplica"]["lagMs"] >= 0

    # The same lag against a tight bound: past it, the primary serves (and has B).
    deps.reads.max_lag_ms = 300

    async def lagging() -> Any:
        s = deps.read_source()
        return s if s.reason == "lagging" else None

    over = await wait_until(lagging, message="lag past the 300 ms bound")
    assert over.source == "primary" and over.lag_ms is not None and over.lag_ms > 300
    ids, r = await _listed(admin)
    assert {a["jobId"], b["jobId"]} <= ids
    assert r.headers["X-Jobline-Read-Source"] == "primary"
    MEASURED["lag_ms_past_bound"] = int(r.headers["X-Jobline-Read-Lag-Ms"])
    assert MEASURED["lag_ms_past_bound"] > 300
    data = await _graphql(admin, JOBS_AND_SOURCE)
    assert b["jobId"] in {e["node"]["id"] for e in data["jobs"]["edges"]}
    assert data["readReplica"] == {"source": "primary", "lagMs": data["readReplica"]["lagMs"],
                                   "maxLagMs": 300, "reason": "lagging"}

    # Replay resumes: the replica catches up and serves again, now with B.
    await replica_resume(replica)
    caught_up = await _on_replica(deps)
    MEASURED["lag_ms_after_resume"] = caught_up.lag_ms
    assert caught_up.lag_ms is not None and caught_up.lag_ms <= 300
    ids, r = await _listed(admin)
    assert r.headers["X-Jobline-Read-Source"] == "replica" and b["jobId"] in ids


async def replica_resume(replica: EmbeddedPostgres) -> None:
    conn = await asyncpg.connect(replica.dsn("postgres"))
    try:
        await conn.execute("SELECT pg_wal_replay_resume()")
    finally:
        await conn.close()


async def test_an_idle_primary_does_not_make_a_caught_up_replica_look_stale(
        deps: Deps, replica: EmbeddedPostgres) -> None:
    """The replica's last replayed commit ages while nothing is written; the WAL positions
    show it has everything, so it keeps serving within a bound shorter than that age."""
    assert deps.reads is not None
    await core.submit_many(deps, [_spec()])
    await _on_replica(deps)
    deps.reads.max_lag_ms = 1_000
    conn = await asyncpg.connect(replica.dsn("postgres"))
    try:
        async def replay_age_ms() -> float | None:
            age = await conn.fetchval(
                "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000")
            return float(age) if age is not None and age > 2_000 else None

        age = await wait_until(replay_age_ms, message="last replayed commit 2 s old")
    finally:
        await conn.close()
    src = await deps.reads.check()
    MEASURED["idle_primary"] = {"replay_timestamp_age_ms": round(age), "lag_ms": src.lag_ms}
    assert src.source == "replica" and src.lag_ms is not None and src.lag_ms < 1_000, src


def _registry() -> Registry:
    reg = Registry()

    @reg.job("noop", queue="rq")
    async def noop(payload: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    @reg.job("boom", queue="rq")
    async def boom(payload: dict[str, Any]) -> None:
        raise ValueError("boom")

    return reg


async def test_writes_and_claims_never_touch_the_replica(deps: Deps) -> None:
    await _on_replica(deps)
    read_deps, src = deps.for_reads()
    assert src.source == "replica" and read_deps.pool is deps.reads.replica  # type: ignore[union-attr]
    # The negative control: a write sent the replica's way fails loudly, nothing is stored.
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        await core.submit_many(read_deps, [_spec()])
    # The real paths, with reads routed to the replica meanwhile: submit, claim, complete,
    # fail into the DLQ, retry from it, cancel. Each would raise as above had it gone there.
    ok = await core.submit_many(deps, [_spec() for _ in range(5)])
    bad = await core.submit_many(deps, [_spec(job_type="boom", max_attempts=1)])
    await drain(deps, _registry(), queues=["rq"])
    assert (await core.get_job(deps, bad[0].submitted.id)).status == "dead_letter"
    assert (await dlq.retry_dead_letters(deps, dlq.DlqFilter(ids=(bad[0].submitted.id,)))) \
        == [bad[0].submitted.id]
    assert await core.cancel(deps, bad[0].submitted.id) == "cancelled"
    for r in ok:
        assert (await core.get_job(deps, r.submitted.id)).status == "completed"
    assert deps.read_source().source == "replica"  # routing stayed on the replica throughout


#: Every REST read the router may send to the replica (docs/deploy.md, "Read replica").
ROUTED_GETS = [
    "/api/v1/jobs", "/api/v1/queues", "/api/v1/workers", "/api/v1/audit",
    "/api/v1/metrics/queues", "/api/v1/metrics/workers", "/api/v1/metrics/jobs/timeline",
    "/api/v1/metrics/job-duration-histogram", "/api/v1/metrics/throughput", "/metrics",
    "/api/v1/admin/dlq", "/api/v1/admin/dlq.csv", "/api/v1/ai/top-issues",
    *[f"/api/v1/analytics/{p}" for p in (
        "summary", "throughput", "durations", "failures", "retries", "queues/health",
        "resources", "cost", "sla", "availability", "slow-jobs", "top-issues")],
]

ROUTED_GRAPHQL = """{
  jobs(first: 5) { edges { node { id } } }
  queues { name }
  workers { id }
  workerGroups { name }
  deadLetters { jobs { id } }
  deadLetterCount
  auditEvents { nextCursor }
  queueMetrics { name }
  jobTimeline { nextCursor }
  jobTimelineDensity { bucketMs }
  durationHistogram { total }
  throughputSeries { minuteMs }
  aiTopIssues { issues { kind } }
  analytics(from: "%s", to: "%s") {
    summary { processed { value } } throughput { completed } durations { p95Ms }
    failures { errorTypes { errorType } trend { at } topJobTypes { jobType }
               timeToFailure { count } }
    retries { __typename } queuesHealth { queue } resources { __typename }
    cost { __typename } sla { queue } availability { __typename } slowJobs { jobType }
    topIssues { kind } }
  criticalPath(jobId: "%s") { __typename }
  readReplica { source reason }
}"""


async def test_every_routed_read_runs_on_the_read_only_replica(
        deps: Deps, admin: httpx.AsyncClient) -> None:
    """No routed read writes anything (a replica would refuse it: 500 / a GraphQL error)."""
    done = await core.submit_many(deps, [_spec() for _ in range(3)])
    await drain(deps, _registry(), queues=["rq"])
    await _on_replica(deps)

    async def job_replicated() -> bool:
        r = await admin.get("/api/v1/analytics/dependencies/critical-path",
                            params={"jobId": str(done[0].submitted.id)})
        return r.status_code == 200 and r.headers["X-Jobline-Read-Source"] == "replica"

    await wait_until(job_replicated, message="critical path served by the replica")
    for path in ROUTED_GETS:
        r = await admin.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["X-Jobline-Read-Source"] == "replica", path
        assert int(r.headers["X-Jobline-Read-Lag-Ms"]) <= 60_000, path
    now = datetime.now(UTC)
    # The OpenAPI document names exactly these operations as replica-routed.
    doc = (await admin.get("/api/v1/openapi.json")).json()
    documented = {path for path, item in doc["paths"].items() if "X-Jobline-Read-Source"
                  in item.get("get", {}).get("responses", {}).get("200", {}).get("headers", {})}
    assert documented == {*ROUTED_GETS, "/api/v1/analytics/dependencies/critical-path"}
    assert "headers" not in doc["paths"]["/api/v1/jobs/{jobId}"]["get"]["responses"]["200"]
    data = await _graphql(admin, ROUTED_GRAPHQL % (
        (now - timedelta(days=1)).isoformat(), (now + timedelta(minutes=1)).isoformat(),
        done[0].submitted.id))
    assert data["readReplica"] == {"source": "replica", "reason": "replica"}


async def test_a_read_the_replica_fails_is_retried_on_the_primary(
        deps: Deps, admin: httpx.AsyncClient, replica: EmbeddedPostgres,
        caplog: pytest.LogCaptureFixture) -> None:
    assert deps.reads is not None
    await core.submit_many(deps, [_spec()])
    await _on_replica(deps)
    await asyncio.to_thread(replica.stop)
    try:
        # routed to the replica (the last check said so), which is gone: the same read runs
        # on the primary, and the router sends reads there until the replica answers again
        ids, r = await _listed(admin)
        assert len(ids) == 1 and r.headers["X-Jobline-Read-Source"] == "primary"
        assert "replica read failed" in caplog.text
        assert deps.read_source().reason == "unreachable"
    finally:
        await asyncio.to_thread(replica.start)
    await _on_replica(deps)


async def test_unreachable_replica_sends_reads_to_the_primary(settings: Settings) -> None:
    from jobline.shared.platform.connections import connect

    port = free_port()  # nothing listens there
    d = await connect(settings.with_(
        database_read_url=f"postgresql://postgres@127.0.0.1:{port}/nowhere"))
    try:
        assert d.reads is not None
        src = await d.reads.check()
        assert (src.source, src.reason, src.lag_ms) == ("primary", "unreachable", None)
        async for admin in serve_app(create_app(d.settings, deps=d)):
            await core.submit_many(d, [_spec()])
            ids, r = await _listed(admin)
            assert len(ids) == 1 and r.headers["X-Jobline-Read-Source"] == "primary"
            assert "X-Jobline-Read-Lag-Ms" not in r.headers
            data = await _graphql(admin, "{ readReplica { source lagMs maxLagMs reason } }")
            assert data["readReplica"] == {"source": "primary", "lagMs": None,
                                           "maxLagMs": 5_000, "reason": "unreachable"}
    finally:
        await d.close()


async def test_without_a_read_url_every_read_is_the_primary(settings: Settings) -> None:
    from jobline.shared.platform.connections import connect

    d = await connect(settings)
    try:
        assert d.reads is None and d.read_pool is d.pool
        async for admin in serve_app(create_app(d.settings, deps=d)):
            _, r = await _listed(admin)
            assert r.headers["X-Jobline-Read-Source"] == "primary"
            data = await _graphql(admin, "{ readReplica { source lagMs reason } }")
            assert data["readReplica"] == {"source": "primary", "lagMs": None,
                                           "reason": "no_replica"}
    finally:
        await d.close()


def teardown_module() -> None:
    if MEASURED:
        print(f"\nread replica lag measured (ms): {MEASURED}")
