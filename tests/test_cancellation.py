"""Cooperative cancel of running jobs: DELETE of a processing job records a request, the worker
holding the lease is signalled (pub/sub, heartbeat fallback), and the attempt ends cancelled."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from jobline import Cancelled, JobContext
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome, Status
from jobline.shared.platform.clock import FakeClock
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.testing import wait_until
from jobline.worker.registry import Registry
from jobline.worker.runtime import Worker


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    # a heartbeat far apart (lease 60 s / 3): a prompt cancel must come from the push path
    return settings.with_(lease_ms=60_000)


async def status_of(deps: Deps, job_id: Any) -> str:
    return str(await deps.pool.fetchval("SELECT status FROM jobs WHERE id = $1", job_id))


async def run_until_started(deps: Deps, reg: Registry, job_type: str,
                            started: asyncio.Event) -> tuple[Any, Worker, asyncio.Task[Any]]:
    [s] = await jobs.submit_many(deps, [JobSpec(queue="work", job_type=job_type, payload={})])
    worker = Worker(deps, reg, queues=["work"], concurrency=2)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.wait_for(worker.cancel_listening.wait(), 10)
    return s.submitted.id, worker, task


async def test_polling_handler_ends_cancelled_after_delete(
        deps: Deps, http: httpx.AsyncClient) -> None:
    reg = Registry()
    started = asyncio.Event()

    @reg.job("long", queue="work")
    async def long(payload: dict[str, Any], ctx: JobContext) -> str:
        started.set()
        for _ in range(6000):  # ~60 s unless cancelled: longer than the wait below
            if ctx.cancelled.is_set():
                return "stopped early"
            await asyncio.sleep(0.01)
        return "ran to the end"

    job_id, worker, task = await run_until_started(deps, reg, "long", started)
    try:
        resp = await http.delete(f"/api/v1/jobs/{job_id}")
        assert resp.status_code == 202, resp.text
        assert resp.json() == {"jobId": str(job_id), "status": "processing",
                               "cancelRequested": True}

        async def cancelled() -> bool:
            return await status_of(deps, job_id) == "cancelled"

        # the heartbeat is 20 s away, so within this deadline only the push path can stop it
        await wait_until(cancelled, timeout=15.0, message="job cancelled")
        job = await jobs.get_job(deps, job_id)
        assert job.result is None and job.completed_ms is not None
        assert [a.outcome for a in job.attempts_history] == ["cancelled"]
        # a second DELETE: terminal now, 409
        assert (await http.delete(f"/api/v1/jobs/{job_id}")).status_code == 409
    finally:
        worker.request_stop()
        await task


async def test_handler_raising_cancelled_and_one_ignoring_the_signal(deps: Deps) -> None:
    reg = Registry()
    started = asyncio.Event()
    gate = asyncio.Event()

    @reg.job("obeys", queue="work")
    async def obeys(payload: dict[str, Any], ctx: JobContext) -> None:
        started.set()
        await ctx.cancelled.wait()
        raise Cancelled("asked to stop")

    @reg.job("ignores", queue="work")
    async def ignores(payload: dict[str, Any], ctx: JobContext) -> str:
        started.set()
        await gate.wait()
        return "done anyway"

    job_id, worker, task = await run_until_started(deps, reg, "obeys", started)
    try:
        assert await jobs.cancel(deps, job_id) == Status.PROCESSING

        async def done(jid: Any, want: str) -> bool:
            return await status_of(deps, jid) == want

        await wait_until(lambda: done(job_id, "cancelled"), timeout=15.0)
        assert (await jobs.get_job(deps, job_id)).error == "asked to stop"

        started.clear()
        [s] = await jobs.submit_many(deps, [JobSpec(queue="work", job_type="ignores",
                                                    payload={})])
        await asyncio.wait_for(started.wait(), 10)
        assert await jobs.cancel(deps, s.submitted.id) == Status.PROCESSING
        r = worker.running[s.submitted.id]
        await asyncio.wait_for(asyncio.Event.wait(r.ctx.cancelled), 15.0)  # signal delivered
        gate.set()
        await wait_until(lambda: done(s.submitted.id, "completed"))
        assert (await jobs.get_job(deps, s.submitted.id)).result == "done anyway"
    finally:
        worker.request_stop()
        await task


async def test_core_cancel_request_turns_any_failure_into_cancelled(settings: Settings) -> None:
    deps = await connect(settings, FakeClock())
    try:
        subs = await jobs.submit_many(deps, [JobSpec(queue="q", job_type="t", payload={})
                                             for _ in range(3)])
        a, b, c = await jobs.claim(deps, "w", ["q"], 3)
        for j in (a, b, c):
            assert await jobs.cancel(deps, j.id) == Status.PROCESSING
        rep = await jobs.heartbeat(deps, [("q", j.id, j.token) for j in (a, b, c)])
        assert rep.lost == [] and set(rep.cancel_requested) == {a.id, b.id, c.id}
        # a retryable failure, a release at shutdown: cancelled, never retried
        r1 = await jobs.fail(deps, [Outcome(a.id, a.token, ok=False, error_type="boom")], [1])
        r2 = await jobs.release(deps, [(b.id, b.token)])
        assert r1.statuses[a.id] == Status.CANCELLED and r2.statuses[b.id] == Status.CANCELLED
        # a success that ignored the signal completes
        r3 = await jobs.complete(deps, [Outcome(c.id, c.token, ok=True, result=1)])
        assert r3.statuses[c.id] == Status.COMPLETED
        assert await jobs.claim(deps, "w", ["q"], 3) == []
        assert len(subs) == 3
    finally:
        await deps.close()
