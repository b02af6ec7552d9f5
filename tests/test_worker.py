"""The worker runtime in-process, against real PostgreSQL + Valkey and the system clock."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from jobline import JobContext, JobError, Retry, Unrecoverable
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.dispatch.redis_dispatch import Dispatch
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect, create_redis
from jobline.testing import drain, wait_until
from jobline.worker.registry import Registry
from jobline.worker.runtime import Worker, list_workers


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(backoff_base_ms=10, backoff_cap_ms=50, lease_ms=5_000)


class Gauge:
    """Counts handlers running at the same time (across threads)."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.lock = threading.Lock()

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


def spec(job_type: str, payload: dict[str, Any] | None = None, **kw: Any) -> JobSpec:
    return JobSpec(queue=kw.pop("queue", "work"), job_type=job_type, payload=payload or {}, **kw)


async def statuses(deps: Deps) -> dict[str, int]:
    return {r["status"]: r["n"] for r in await deps.pool.fetch(
        "SELECT status, count(*) AS n FROM jobs GROUP BY status")}


async def test_jobs_processed_with_results_and_concurrency_limit(deps: Deps) -> None:
    reg = Registry()
    gauge = Gauge()
    release = asyncio.Event()

    @reg.job("add", queue="work")
    async def add(payload: dict[str, Any]) -> dict[str, Any]:
        gauge.enter()
        try:
            await release.wait()
            return {"sum": payload["a"] + payload["b"]}
        finally:
            gauge.leave()

    subs = await jobs.submit_many(deps, [spec("add", {"a": i, "b": 1}) for i in range(30)])
    worker = Worker(deps, reg, queues=["work"], concurrency=4)
    task = asyncio.create_task(worker.run())

    async def saturated() -> bool:
        return gauge.now == 4

    await wait_until(saturated, message="4 handlers running")
    # With 4 running and 26 waiting, the worker must not start a 5th.
    assert len(worker.running) == 4
    assert (await statuses(deps)).get("processing") == 4
    release.set()

    async def all_done() -> bool:
        return (await statuses(deps)).get("completed") == 30

    await wait_until(all_done, message="30 completed")
    worker.request_stop()
    stats = await task
    assert gauge.peak == 4
    assert stats.processed == 30
    for i, s in enumerate(subs):
        job = await jobs.get_job(deps, s.submitted.id)
        assert job.result == {"sum": i + 1} and job.attempts == 1


async def test_sync_handlers_run_in_threads_and_respect_concurrency(deps: Deps) -> None:
    reg = Registry()
    gauge = Gauge()
    barrier = threading.Event()
    main_thread = threading.get_ident()
    seen_threads: set[int] = set()

    @reg.job("blocking", queue="work")
    def blocking(payload: dict[str, Any]) -> int:
        gauge.enter()
        seen_threads.add(threading.get_ident())
        barrier.wait(10)
        gauge.leave()
        return int(payload["i"])

    await jobs.submit_many(deps, [spec("blocking", {"i": i}) for i in range(9)])
    worker = Worker(deps, reg, queues=["work"], concurrency=3)
    task = asyncio.create_task(worker.run())

    async def three() -> bool:
        return gauge.now == 3

    await wait_until(three, message="3 sync handlers running")
    barrier.set()

    async def done() -> bool:
        return (await statuses(deps)).get("completed") == 9

    await wait_until(done, message="9 completed")
    worker.request_stop()
    await task
    assert gauge.peak == 3 and main_thread not in seen_threads


async def test_failures_retry_then_succeed_or_dead_letter(deps: Deps) -> None:
    reg = Registry()

    @reg.job("flaky", queue="work")
    async def flaky(payload: dict[str, Any], ctx: JobContext) -> dict[str, int]:
        if ctx.attempt <= payload["fail"]:
            raise JobError("upstream down", error_type="connection_refused")
        return {"attempt": ctx.attempt}

    @reg.job("bad", queue="work")
    async def bad(payload: dict[str, Any]) -> None:
        raise Unrecoverable("no such user", error_type="validation_error")

    @reg.job("buggy", queue="work")
    async def buggy(payload: dict[str, Any]) -> None:
        raise KeyError("oops")

    # (a job type without a handler is handed back instead: tests/test_job_types.py)
    ok, exhausted, unrec, bug = await jobs.submit_many(deps, [
        spec("flaky", {"fail": 2}, max_attempts=3), spec("flaky", {"fail": 5}, max_attempts=3),
        spec("bad"), spec("buggy", max_attempts=2)])
    await drain(deps, reg, queues=["work"], concurrency=5)
    j = await jobs.get_job(deps, ok.submitted.id)
    assert j.status == "completed" and j.result == {"attempt": 3}
    assert [a.outcome for a in j.attempts_history] == ["failed", "failed", "completed"]
    assert all(a.error_type == "connection_refused" for a in j.attempts_history[:2])
    j = await jobs.get_job(deps, exhausted.submitted.id)
    assert j.status == "dead_letter" and j.attempts == 3 and j.error_type == "connection_refused"
    j = await jobs.get_job(deps, unrec.submitted.id)
    assert j.status == "dead_letter" and j.attempts == 1 and j.error == "no such user"
    j = await jobs.get_job(deps, bug.submitted.id)
    assert j.status == "dead_letter" and j.attempts == 2 and "KeyError" in (j.error or "")


async def test_timeout_fails_the_attempt_with_error_type_timeout(deps: Deps) -> None:
    reg = Registry()

    @reg.job("slow", queue="work", timeout="50ms", max_attempts=2)
    async def slow(payload: dict[str, Any]) -> None:
        await asyncio.Event().wait()

    [s] = await jobs.submit_many(deps, [spec("slow", max_attempts=2)])
    await drain(deps, reg, queues=["work"])
    j = await jobs.get_job(deps, s.submitted.id)
    assert j.status == "dead_letter" and j.error_type == "timeout"
    assert [a.outcome for a in j.attempts_history] == ["timeout", "timeout"]


async def test_rate_limited_retry_does_not_burn_attempts(deps: Deps) -> None:
    reg = Registry()

    @reg.job("limited", queue="work")
    async def limited(payload: dict[str, Any], ctx: JobContext) -> int:
        if ctx.execution <= 3:
            raise Retry(after=0.01, reason="429", burn_attempt=False, error_type="rate_limited")
        return ctx.attempt

    [s] = await jobs.submit_many(deps, [spec("limited", max_attempts=1)])
    await drain(deps, reg, queues=["work"])
    j = await jobs.get_job(deps, s.submitted.id)
    assert j.status == "completed" and j.result == 1 and j.attempts == 1
    assert [a.outcome for a in j.attempts_history] == ["retry", "retry", "retry", "completed"]


async def test_warm_shutdown_finishes_in_flight_then_stops_claiming(deps: Deps) -> None:
    reg = Registry()
    started = asyncio.Event()
    finish = asyncio.Event()

    @reg.job("long", queue="work")
    async def long(payload: dict[str, Any]) -> str:
        started.set()
        await finish.wait()
        return "done"

    first, second = await jobs.submit_many(deps, [spec("long"), spec("long")])
    worker = Worker(deps, reg, queues=["work"], concurrency=1)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 10)
    worker.request_stop()
    finish.set()
    await task
    assert (await jobs.get_job(deps, first.submitted.id)).status == "completed"
    assert (await jobs.get_job(deps, second.submitted.id)).status == "pending"


async def test_grace_expiry_releases_unfinished_jobs_at_once(settings: Settings) -> None:
    deps = await connect(settings.with_(shutdown_grace_s=0.05))
    try:
        reg = Registry()
        started = asyncio.Event()

        @reg.job("forever", queue="work")
        async def forever(payload: dict[str, Any]) -> None:
            started.set()
            await asyncio.Event().wait()

        [s] = await jobs.submit_many(deps, [spec("forever")])
        worker = Worker(deps, reg, queues=["work"], concurrency=2)
        task = asyncio.create_task(worker.run())
        await asyncio.wait_for(started.wait(), 10)
        worker.request_stop()
        # the handler never returns: only the 50 ms grace expiring can end the worker
        await asyncio.wait_for(task, 60)
        j = await jobs.get_job(deps, s.submitted.id)
        assert j.status == "pending" and j.attempts == 0
        assert j.attempts_history[0].outcome == "released"
        # released means dispatchable again right away
        assert (await deps.dispatch.depth(["work"]))["work"]["ready"] == 1
    finally:
        await deps.close()


async def test_idle_worker_wakes_on_submit_and_registers_itself(deps: Deps) -> None:
    reg = Registry()
    got = asyncio.Event()

    @reg.job("ping", queue="other")
    async def ping(payload: dict[str, Any]) -> str:
        got.set()
        return "pong"

    worker = Worker(deps, reg, concurrency=2)  # every queue, including ones created later
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.started.wait(), 10)
    workers = await list_workers(deps)
    assert [w["id"] for w in workers] == [worker.worker_id]
    assert workers[0]["queues"] == ["*"]
    await jobs.submit(deps, spec("ping", queue="other"))
    await asyncio.wait_for(got.wait(), 10)
    worker.request_stop()
    await task
    assert await list_workers(deps) == []


async def test_wait_and_claim_leases_on_valkeys_clock_and_an_interrupted_wait_takes_nothing(
        deps: Deps, settings: Settings) -> None:
    """The idle worker's wait and its claim share one round trip: a submit that ends the wait
    is claimed by it, with the lease computed from Valkey's clock; a wait of a worker told to
    stop returns at once, claims nothing and passes the wake-up on."""
    block = Dispatch(create_redis(settings.redis_url or "", blocking=True), settings.redis_prefix,
                     settings.redis_slot_groups)
    keys = deps.dispatch.keys("work")
    try:
        waiting = asyncio.create_task(jobs.wait_and_claim(
            deps, block, "w1", ["work"], 10.0, ["work"], 5))

        async def blocked() -> bool:
            return int((await deps.redis.info("clients"))["blocked_clients"]) >= 1
        await wait_until(blocked, message="the wait to block")
        sub = (await jobs.submit(deps, spec("t"))).submitted
        res = await asyncio.wait_for(waiting, 10)
        assert [j.id for j in res.jobs] == [sub.id]
        secs, micros = await deps.redis.time()
        server_ms = secs * 1000 + micros // 1000
        lease = await deps.redis.zscore(keys.leases, str(sub.id))
        assert lease is not None
        assert 0 <= server_ms + deps.settings.lease_ms - lease < 5_000  # leased just now
        assert res.jobs[0].lease_expires_ms == int(lease)
        row = await deps.pool.fetchrow("SELECT status, worker_id FROM jobs WHERE id = $1", sub.id)
        assert (row["status"], row["worker_id"]) == ("processing", "w1")

        # told to stop: a job is ready and its wake-up pending, yet the wait claims nothing
        nxt = (await jobs.submit(deps, spec("t"))).submitted
        await deps.dispatch.interrupt("w2")
        res = await asyncio.wait_for(jobs.wait_and_claim(
            deps, block, "w2", ["work"], 10.0, ["work"], 5), 10)
        assert res.jobs == []
        assert await deps.redis.zscore(keys.ready, str(nxt.id)) is not None
        assert await deps.redis.llen(keys.wake) == 1  # passed on to the next idle worker
        res = await asyncio.wait_for(jobs.wait_and_claim(
            deps, block, "w3", ["work"], 10.0, ["work"], 5), 10)
        assert [j.id for j in res.jobs] == [nxt.id]
    finally:
        await block.r.aclose()
