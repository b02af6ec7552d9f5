"""Worker runtime defects of issue 13 (5: sync timeouts, 6: the completer's flushing batch),
against real PostgreSQL + Valkey."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from jobline.shared.core import jobs
from jobline.shared.core.models import ClaimedJob, JobSpec, Outcome
from jobline.shared.platform.clock import FakeClock, from_dt
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.shared.platform.errors import Unavailable
from jobline.shared.retry.policy import RetryPolicy
from jobline.testing import wait_until
from jobline.worker.backend import DirectBackend, Recorded
from jobline.worker.registry import Registry
from jobline.worker.runtime import Completer, Worker, WorkerStats


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(backoff_base_ms=10, backoff_cap_ms=50, lease_ms=5_000)


def spec(job_type: str, **kw: Any) -> JobSpec:
    return JobSpec(queue="work", job_type=job_type, payload={}, **kw)


async def status_of(deps: Deps, job_id: Any) -> str:
    return str(await deps.pool.fetchval("SELECT status FROM jobs WHERE id = $1", job_id))


# --- defect 5 ------------------------------------------------------------------------------


async def test_sync_timeout_counts_only_the_run_not_the_wait_for_a_thread(deps: Deps) -> None:
    """A timed-out sync handler keeps its thread (Python cannot stop a thread), so the next sync
    job waits for one. Its timeout must start when it runs: waiting is not running."""
    reg = Registry()
    gate = threading.Event()

    @reg.job("stuck", queue="work", timeout="100ms", max_attempts=1)
    def stuck(payload: dict[str, Any]) -> None:
        gate.wait(30)

    @reg.job("quick", queue="work", timeout="200ms", max_attempts=1)
    def quick(payload: dict[str, Any]) -> int:
        return 42

    worker = Worker(deps, reg, queues=["work"], concurrency=1)
    task = asyncio.create_task(worker.run())
    try:
        first = (await jobs.submit(deps, spec("stuck", max_attempts=1))).submitted.id

        async def stuck_timed_out() -> bool:
            return await status_of(deps, first) == "dead_letter"
        await wait_until(stuck_timed_out, message="the stuck job to time out")
        second = (await jobs.submit(deps, spec("quick", max_attempts=1))).submitted.id

        async def claimed() -> bool:
            return await status_of(deps, second) == "processing"
        await wait_until(claimed, message="the quick job to be claimed")
        # The quick job now waits for the stuck thread. Let more than its timeout pass: this
        # is the duration under test, not a wait for state.
        await asyncio.sleep(0.6)
        gate.set()

        async def finished() -> bool:
            return await status_of(deps, second) in ("completed", "dead_letter")
        await wait_until(finished, message="the quick job to finish")
        job = await jobs.get_job(deps, second)
        assert (job.status, job.result, job.error_type) == ("completed", 42, None)
    finally:
        gate.set()
        worker.request_stop()
        await asyncio.wait_for(task, 60)


# --- defect 6 ------------------------------------------------------------------------------


class SlowRecord(DirectBackend):
    """The direct backend whose ``record`` waits on a gate (a database answering slowly), or
    fails with :class:`Unavailable` while ``down``."""

    def __init__(self, deps: Deps) -> None:
        super().__init__(deps)
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self.down = False
        self.calls = 0

    async def record(self, batch: Sequence[tuple[Outcome, ClaimedJob, RetryPolicy | None]]
                     ) -> Recorded:
        self.calls += 1
        self.entered.set()
        if self.down:
            raise Unavailable("database unavailable: test")
        await self.gate.wait()
        return await super().record(batch)


@pytest.fixture
async def fake_deps(settings: Settings) -> AsyncIterator[tuple[Deps, FakeClock]]:
    clock = FakeClock()
    d = await connect(settings.with_(lease_ms=3_000), clock)
    yield d, clock
    await d.close()


async def test_the_batch_being_flushed_keeps_its_lease(
        fake_deps: tuple[Deps, FakeClock]) -> None:
    """While the completer waits on a slow database, the heartbeat must cover the batch it is
    flushing, or the lease lapses and the reaper re-runs a finished job."""
    deps, clock = fake_deps
    reg = Registry()

    @reg.job("t", queue="work")
    async def t(payload: dict[str, Any]) -> int:
        return 1

    backend = SlowRecord(deps)
    worker = Worker(backend, reg, queues=["work"], concurrency=1, heartbeat_ms=50)
    task = asyncio.create_task(worker.run())
    try:
        job_id = (await jobs.submit(deps, spec("t"))).submitted.id
        await asyncio.wait_for(backend.entered.wait(), 30)  # the flush is in progress
        first = from_dt(await deps.pool.fetchval(
            "SELECT lease_expires_at FROM jobs WHERE id = $1", job_id))
        clock.advance(2_000)

        async def extended() -> bool:
            lease = from_dt(await deps.pool.fetchval(
                "SELECT lease_expires_at FROM jobs WHERE id = $1", job_id))
            return lease == clock.now_ms() + 3_000 and lease > first
        await wait_until(extended, message="a heartbeat of the flushing batch")
        backend.gate.set()

        async def done() -> bool:
            return await status_of(deps, job_id) == "completed"
        await wait_until(done, message="the flush")
    finally:
        backend.gate.set()
        worker.request_stop()
        await asyncio.wait_for(task, 60)


async def test_a_flush_that_keeps_failing_gives_up_and_leaves_the_jobs_to_the_reaper(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """Retrying is bounded (two leases: by then, with the database unreachable for heartbeats
    too, the lease has lapsed and the reaper owns the jobs)."""
    deps = await connect(settings.with_(lease_ms=150))
    try:
        await jobs.submit(deps, spec("t"))
        [job] = await jobs.claim(deps, "w", ["work"], 1)
        backend = SlowRecord(deps)
        backend.down = True
        await flush_until_given_up(deps, backend, job, caplog)
    finally:
        await deps.close()


async def flush_until_given_up(deps: Deps, backend: SlowRecord, job: ClaimedJob,
                               caplog: pytest.LogCaptureFixture) -> None:
    completer = Completer(backend, WorkerStats())
    completer.start()
    try:
        p = completer.add(Outcome(job.id, job.token, ok=True, result=1), job)
        with caplog.at_level(logging.ERROR, logger="jobline.worker"):
            await asyncio.wait_for(asyncio.shield(p.done), 20)
        assert completer.pending == []  # no longer heartbeated: the lease lapses
        assert backend.calls >= 2  # it did retry before giving up
        assert any("giving up" in r.getMessage() for r in caplog.records)
        assert await status_of(deps, job.id) == "processing"  # the reaper's to re-run
    finally:
        await completer.aclose()


# --- warm shutdown hang (a lost cancellation) ----------------------------------------------


class SwallowsOneCancel(DirectBackend):
    """A heartbeat whose store call loses the worker's ``cancel()``, as Python 3.11's
    ``asyncio.wait_for`` does when the operation it guards has just completed (redis-py wraps
    every socket write in it): the CancelledError is dropped and the call returns normally.

    Deterministic here: the heartbeat parks (``parked``) until it is cancelled, then returns.
    """

    def __init__(self, deps: Deps) -> None:
        super().__init__(deps)
        self.parked = asyncio.Event()
        self.swallowed = 0
        self._armed = True

    async def heartbeat(self, held: Sequence[tuple[str, Any, int]]) -> jobs.HeartbeatReport:
        rep = await super().heartbeat(held)
        if self._armed and held:
            self._armed = False
            self.parked.set()
            try:
                await asyncio.Event().wait()  # parked until cancelled
            except asyncio.CancelledError:
                self.swallowed += 1  # what 3.11's wait_for does in the race
        return rep


async def test_warm_shutdown_ends_even_when_a_heartbeat_loses_its_cancellation(
        deps: Deps) -> None:
    """The stop must not depend on one ``cancel()`` reaching the heartbeat loop: a cancel lost
    inside a store call left the loop heartbeating forever and ``run()`` awaiting it."""
    reg = Registry()
    gate = asyncio.Event()

    @reg.job("held", queue="work")
    async def held(payload: dict[str, Any]) -> int:
        await gate.wait()
        return 1

    backend = SwallowsOneCancel(deps)
    worker = Worker(backend, reg, queues=["work"], concurrency=1, heartbeat_ms=50)
    task = asyncio.create_task(worker.run())
    try:
        job_id = (await jobs.submit(deps, spec("held"))).submitted.id
        await asyncio.wait_for(backend.parked.wait(), 30)  # a heartbeat in flight
        worker.request_stop()  # warm: the handler finishes, then the loops are stopped
        gate.set()
        done, _ = await asyncio.wait([task], timeout=30)
        assert task in done, "run() never returned: the heartbeat loop outlived the stop"
        assert backend.swallowed == 1  # the fault did happen
        assert await status_of(deps, job_id) == "completed"
    finally:
        gate.set()
        if not task.done():
            task.cancel()
            worker._stop_loops = True
