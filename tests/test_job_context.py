"""Inside a running job: ``ctx.progress``/``ctx.log`` (bounded, masked, stored per execution),
the hard cancel of an async handler after the grace period, and result expiry."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest

from jobline import JobContext
from jobline.shared.core import jobs, progress, results
from jobline.shared.core.models import JobSpec, Outcome, Status
from jobline.shared.platform.clock import FakeClock
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.testing import wait_until
from jobline.worker.registry import Registry
from jobline.worker.runtime import Worker


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    # a short grace so the hard cancel test does not wait 5 s; a fast flush
    return settings.with_(cancel_grace_s=0.2, progress_flush_ms=20)


async def status_of(deps: Deps, job_id: Any) -> str:
    return str(await deps.pool.fetchval("SELECT status FROM jobs WHERE id = $1", job_id))


async def submit(deps: Deps, job_type: str, **kw: Any) -> Any:
    [s] = await jobs.submit_many(deps, [JobSpec(queue="work", job_type=job_type, payload={},
                                                **kw)])
    return s.submitted.id


async def started_worker(deps: Deps, reg: Registry) -> tuple[Worker, asyncio.Task[Any]]:
    worker = Worker(deps, reg, queues=["work"], concurrency=2)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.started.wait(), 10)
    await asyncio.wait_for(worker.cancel_listening.wait(), 10)
    return worker, task


# --- progress and logs ---------------------------------------------------------------------


async def test_progress_and_logs_are_stored_bounded_and_masked(
        deps: Deps, http: httpx.AsyncClient) -> None:
    reg = Registry()
    gate = asyncio.Event()

    @reg.job("reports", queue="work")
    async def reports(payload: dict[str, Any], ctx: JobContext) -> str:
        for i in range(150):
            ctx.log("line", i, "token=s3cr3t-value")
        ctx.log("x" * 5000)
        ctx.progress(0.5, "half way")
        await gate.wait()
        ctx.progress(1.0)
        return "done"

    @reg.job("silent", queue="work")
    async def silent(payload: dict[str, Any]) -> str:
        return "quiet"

    worker, task = await started_worker(deps, reg)
    try:
        job_id = await submit(deps, "reports")

        async def half() -> progress.Progress | None:
            p = await progress.get_progress(deps, job_id)
            return p if p is not None and p.fraction == 0.5 else None

        p = await wait_until(half, timeout=15.0, message="progress stored")
        assert p.message == "half way" and p.attempt == 1
        assert len(p.logs) == progress.MAX_LOG_LINES
        # the newest 100 of 151 lines: 51..149, then the long one
        assert p.logs[0][1] == "line 51 token=***"
        assert p.logs[-1][1] == "x" * progress.MAX_LINE_CHARS
        assert p.logs_dropped == 51
        assert all("s3cr3t" not in m for _, m in p.logs)

        # live over REST while running
        body = (await http.get(f"/api/v1/jobs/{job_id}")).json()
        assert body["progress"]["fraction"] == 0.5
        assert body["progress"]["logs"][0]["message"] == "line 51 token=***"

        gate.set()
        await wait_until(lambda: _is(deps, job_id, "completed"), timeout=15.0)
        final = await progress.get_progress(deps, job_id)
        assert final is not None and final.fraction == 1.0 and final.message == "half way"

        # a handler that reports nothing writes no progress row
        quiet = await submit(deps, "silent")
        await wait_until(lambda: _is(deps, quiet, "completed"), timeout=15.0)
        assert await deps.pool.fetchval(
            "SELECT count(*) FROM job_progress WHERE job_id = $1", quiet) == 0
        assert (await http.get(f"/api/v1/jobs/{quiet}")).json()["progress"] is None
    finally:
        gate.set()
        worker.request_stop()
        await task


async def test_a_sync_handler_reports_from_its_thread(deps: Deps) -> None:
    reg = Registry()

    @reg.job("sync_reports", queue="work")
    def sync_reports(payload: dict[str, Any], ctx: JobContext) -> int:
        for i in range(10):
            ctx.progress((i + 1) / 10, f"step {i + 1}")
            ctx.log("step", i + 1)
        return 10

    worker, task = await started_worker(deps, reg)
    try:
        job_id = await submit(deps, "sync_reports")
        await wait_until(lambda: _is(deps, job_id, "completed"), timeout=15.0)
        # flushed before the outcome: the finished attempt's lines are all there
        p = await progress.get_progress(deps, job_id)
        assert p is not None
        assert (p.fraction, p.message) == (1.0, "step 10")
        assert [m for _, m in p.logs] == [f"step {i}" for i in range(1, 11)]
        assert worker._progress is not None and not worker._progress._writing  # nothing kept
    finally:
        worker.request_stop()
        await task


async def test_progress_of_an_execution_that_lost_its_lease_is_dropped(deps: Deps) -> None:
    job_id = await submit(deps, "t")
    [c] = await jobs.claim(deps, "w", ["work"], 1)
    stale = progress.ProgressReport(job_id, c.token + 1, 0.3, "not mine", [(1, "x")])
    fresh = progress.ProgressReport(job_id, c.token, 0.7, "mine", [(1, "y")])
    assert await progress.record(deps, [stale, fresh]) == [job_id]
    p = await progress.get_progress(deps, job_id)
    assert p is not None and (p.fraction, p.message, p.logs) == (0.7, "mine", [(1, "y")])


def test_progress_fraction_is_checked() -> None:
    from jobline.worker.progress import JobReporter

    r = JobReporter(__import__("uuid").uuid4(), 1, FakeClock(), None)
    with pytest.raises(ValueError, match="within"):
        r.progress(1.5, None)


# --- hard cancel ---------------------------------------------------------------------------


async def test_async_handler_ignoring_the_cancel_is_stopped_after_the_grace(deps: Deps) -> None:
    """Failed before: a cancel only set ctx.cancelled, and a handler that never looked (here a
    one-hour sleep) kept its job processing until it returned."""
    reg = Registry()
    started = asyncio.Event()
    stopped = asyncio.Event()

    @reg.job("sleeper", queue="work")
    async def sleeper(payload: dict[str, Any]) -> str:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            stopped.set()
            raise
        return "slept"

    @reg.job("after", queue="work")
    async def after(payload: dict[str, Any]) -> str:
        return "still working"

    worker, task = await started_worker(deps, reg)
    try:
        job_id = await submit(deps, "sleeper")
        await asyncio.wait_for(started.wait(), 10)
        assert await jobs.cancel(deps, job_id) == Status.PROCESSING
        await wait_until(lambda: _is(deps, job_id, "cancelled"), timeout=15.0,
                         message="hard-cancelled")
        assert stopped.is_set()
        job = await jobs.get_job(deps, job_id)
        assert job.error is not None and "stopped by the worker" in job.error
        assert [a.outcome for a in job.attempts_history] == ["cancelled"]
        # the worker carries on
        nxt = await submit(deps, "after")
        await wait_until(lambda: _is(deps, nxt, "completed"), timeout=15.0)
        assert not worker.running
    finally:
        worker.request_stop()
        await task
    assert not task.cancelled()


async def test_sync_handler_is_not_killed_and_finishes(deps: Deps) -> None:
    reg = Registry()
    started = threading.Event()
    gate = threading.Event()

    @reg.job("blocking", queue="work")
    def blocking(payload: dict[str, Any]) -> str:
        started.set()
        gate.wait(60)
        return "finished"

    worker, task = await started_worker(deps, reg)
    try:
        job_id = await submit(deps, "blocking")
        await asyncio.to_thread(started.wait, 10)
        assert await jobs.cancel(deps, job_id) == Status.PROCESSING
        r = worker.running[job_id]
        await asyncio.wait_for(asyncio.Event.wait(r.ctx.cancelled), 15.0)
        assert r.grace is None  # no hard cancel armed: a thread cannot be stopped
        gate.set()
        # it never looked at ctx.cancelled, so it completes normally (docs/state-machine.md)
        await wait_until(lambda: _is(deps, job_id, "completed"), timeout=15.0)
    finally:
        gate.set()
        worker.request_stop()
        await task


async def _is(deps: Deps, job_id: Any, status: str) -> bool:
    return await status_of(deps, job_id) == status


async def test_handler_swallowing_the_hard_cancel_still_ends_cancelled(deps: Deps) -> None:
    reg = Registry()
    started = asyncio.Event()

    @reg.job("stubborn", queue="work")
    async def stubborn(payload: dict[str, Any]) -> str:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return "pretending nothing happened"
        return "slept"

    worker, task = await started_worker(deps, reg)
    try:
        job_id = await submit(deps, "stubborn")
        await asyncio.wait_for(started.wait(), 10)
        await jobs.cancel(deps, job_id)
        await wait_until(lambda: _is(deps, job_id, "cancelled"), timeout=15.0)
        job = await jobs.get_job(deps, job_id)
        assert job.result is None and "stopped by the worker" in (job.error or "")
    finally:
        worker.request_stop()
        await task


# --- result expiry -------------------------------------------------------------------------


async def _complete(deps: Deps, job_id: Any, result: Any, ttl: int | None = None) -> None:
    [c] = [c for c in await jobs.claim(deps, "w", ["work"], 10) if c.id == job_id]
    rep = await jobs.complete(deps, [Outcome(c.id, c.token, ok=True, result=result,
                                             result_ttl_s=ttl)])
    assert rep.accepted == [job_id]


class TestResultTtl:
    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def deps_settings(self, settings: Settings) -> Settings:
        return settings.with_(result_ttl_s=3600)

    async def test_levels_and_expiry(self, deps: Deps, clock: FakeClock,
                                     http: httpx.AsyncClient) -> None:
        own = await submit(deps, "t", result_ttl_s=60)
        await _complete(deps, own, {"v": 1}, ttl=600)  # the job's own wins over the handler's
        by_handler = await submit(deps, "t")
        await _complete(deps, by_handler, {"v": 2}, ttl=120)
        by_default = await submit(deps, "t")
        await _complete(deps, by_default, {"v": 3})
        kept = await submit(deps, "t", result_ttl_s=0)  # 0: kept despite the default
        await _complete(deps, kept, {"v": 4})
        now = clock.now_ms()
        expiries = {j: (await jobs.get_job(deps, j)).result_expires_ms
                    for j in (own, by_handler, by_default, kept)}
        assert expiries == {own: now + 60_000, by_handler: now + 120_000,
                            by_default: now + 3_600_000, kept: None}
        await progress.record(deps, [])  # no-op
        await deps.pool.execute(
            "INSERT INTO job_progress (job_id, lease_token, attempt, updated_at) "
            "VALUES ($1, 1, 1, now())", own)

        assert await results.expire_results(deps) == 0
        clock.advance(61_000)
        assert await results.expire_results(deps) == 1
        body = (await http.get(f"/api/v1/jobs/{own}")).json()
        assert (body["result"], body["resultExpired"], body["resultExpiresAt"]) == (None, True,
                                                                                   None)
        assert body["resultTtl"] == 60 and body["status"] == "completed"
        assert await deps.pool.fetchval(
            "SELECT count(*) FROM job_progress WHERE job_id = $1", own) == 0
        other = (await http.get(f"/api/v1/jobs/{by_handler}")).json()
        assert (other["result"], other["resultExpired"]) == ({"v": 2}, False)

        clock.advance(3_600_000)
        # one row per statement here: still all of them in one call
        assert await results.expire_results(deps, batch=1) == 2
        assert (await jobs.get_job(deps, kept)).result == {"v": 4}
        listed = (await http.get("/api/v1/jobs", params={"queue": "work"})).json()["jobs"]
        assert sorted(j["resultExpired"] for j in listed) == [False, True, True, True]

    async def test_the_scheduler_sweeps_expired_results(self, deps: Deps,
                                                         clock: FakeClock) -> None:
        from jobline.schedulers.runner import Scheduler

        job_id = await submit(deps, "t", result_ttl_s=5)
        await _complete(deps, job_id, "gone soon")
        clock.advance(5_000)
        sched = Scheduler(deps)
        task = asyncio.create_task(sched.run())
        try:
            async def expired() -> bool:
                return (await jobs.get_job(deps, job_id)).result_expired

            await wait_until(expired, timeout=30.0, message="result expired by the scheduler")
        finally:
            sched.request_stop()
            await task
        assert (await jobs.get_job(deps, job_id)).result is None
        assert sched.ticks.get("results", 0) >= 1

    async def test_rest_accepts_and_checks_result_ttl(self, http: httpx.AsyncClient) -> None:
        r = await http.post("/api/v1/jobs", json={"jobType": "t", "resultTtl": 30})
        assert r.status_code == 201, r.text
        got = (await http.get(f"/api/v1/jobs/{r.json()['jobId']}")).json()
        assert got["resultTtl"] == 30 and got["resultExpired"] is False
        bad = await http.post("/api/v1/jobs", json={"jobType": "t", "resultTtl": -1})
        assert bad.status_code == 422 and "resultTtl" in bad.text


def test_job_decorator_takes_result_ttl() -> None:
    reg = Registry()

    @reg.job("kept_an_hour", result_ttl="1h")
    def h(payload: dict[str, Any]) -> None: ...

    spec = reg.get("kept_an_hour")
    assert spec is not None and spec.result_ttl_s == 3600
    with pytest.raises(ValueError, match="result_ttl"):
        reg.job("bad", result_ttl="soon")


# --- queue purge ---------------------------------------------------------------------------


async def test_purge_cancels_pending_and_scheduled_only(deps: Deps, http: httpx.AsyncClient
                                                        ) -> None:
    from jobline.client import Client

    ids = [s.submitted.id for s in await jobs.submit_many(deps, [
        JobSpec(queue="p", job_type="t", payload={}) for _ in range(5)])]
    later = [s.submitted.id for s in await jobs.submit_many(deps, [
        JobSpec(queue="p", job_type="t", payload={}, delay_ms=3_600_000) for _ in range(2)])]
    [other] = await jobs.submit_many(deps, [JobSpec(queue="q2", job_type="t", payload={})])
    [running] = await jobs.claim(deps, "w", ["p"], 1)

    assert await jobs.purge_queue(deps, "p", batch=2) == 6
    for j in ids + later:
        want = "processing" if j == running.id else "cancelled"
        assert await status_of(deps, j) == want
    assert await status_of(deps, other.submitted.id) == "pending"
    depth = (await deps.dispatch.depth(["p"]))["p"]
    assert (depth["ready"], depth["delayed"], depth["leased"]) == (0, 0, 1)
    job = await jobs.get_job(deps, ids[1])
    assert job.error == "queue purged"

    # REST (admin), GraphQL, the client: the same operation
    await jobs.submit_many(deps, [JobSpec(queue="p", job_type="t", payload={})])
    r = await http.post("/api/v1/queues/p/purge")
    assert r.status_code == 200 and r.json() == {"queue": "p", "cancelled": 1}
    await jobs.submit_many(deps, [JobSpec(queue="p", job_type="t", payload={})] * 2)
    g = await http.post("/graphql", json={"query": 'mutation { purgeQueue(queue: "p") }'})
    assert g.json() == {"data": {"purgeQueue": 2}}
    await jobs.submit_many(deps, [JobSpec(queue="p", job_type="t", payload={})])
    async with Client(deps) as client:
        assert await client.purge_queue("p") == 1
        assert await client.purge_queue("p") == 0
    bad = await http.post("/api/v1/queues/bad%20name/purge")
    assert bad.status_code == 422


async def test_purge_needs_an_admin_key(deps: Deps, http: httpx.AsyncClient) -> None:
    from jobline.shared.security import auth

    _, dev = await auth.create_key(deps, "developer", "dev")
    _, admin = await auth.create_key(deps, "admin", "admin")
    await jobs.submit_many(deps, [JobSpec(queue="p", job_type="t", payload={})])
    r = await http.post("/api/v1/queues/p/purge", headers={"X-Api-Key": dev})
    assert r.status_code == 403
    g = await http.post("/graphql", json={"query": 'mutation { purgeQueue(queue: "p") }'},
                        headers={"X-Api-Key": dev})
    assert g.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    ok = await http.post("/api/v1/queues/p/purge", headers={"X-Api-Key": admin})
    assert ok.json() == {"queue": "p", "cancelled": 1}
