"""Real worker and scheduler processes, real signals: SIGTERM and SIGKILL mid-job lose nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.testing import wait_until

pytestmark = pytest.mark.slow


class Procs:
    """Starts jobline processes against the test's database and Redis prefix."""

    def __init__(self, settings: Settings, home: Path) -> None:
        self.env = dict(
            os.environ,
            DATABASE_URL=settings.database_url or "",
            REDIS_URL=settings.redis_url or "",
            JOBLINE_REDIS_PREFIX=settings.redis_prefix,
            JOBLINE_HOME=str(home),
            JOBLINE_LEASE_MS="1500",
            JOBLINE_SWEEP_MS="200",
            JOBLINE_BACKOFF_BASE_MS="50",
            JOBLINE_BACKOFF_CAP_MS="200",
        )
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([sys.executable, "-m", "jobline", *args],
                             env={**self.env, **env}, start_new_session=True)
        self.started.append(p)
        return p

    def worker(self, *extra: str, **env: str) -> subprocess.Popen[bytes]:
        return self.start("worker", "--app", "jobline.demo", *extra, **env)

    def stop_all(self) -> None:
        for p in self.started:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture
def procs(settings: Settings, tmp_path: Path) -> Iterator[Procs]:
    p = Procs(settings, tmp_path)
    yield p
    p.stop_all()


def sleep_job(ms: int, **kw: Any) -> JobSpec:
    return JobSpec(queue="default", job_type="demo.sleep", payload={"ms": ms}, **kw)


async def counts(deps: Deps) -> dict[str, int]:
    return {r["status"]: r["n"] for r in await deps.pool.fetch(
        "SELECT status, count(*) AS n FROM jobs GROUP BY status")}


async def assert_each_completed_once(deps: Deps, n: int) -> None:
    rows = await deps.pool.fetch(
        """SELECT j.id, j.status, count(a.*) FILTER (WHERE a.outcome = 'completed') AS done
             FROM jobs j LEFT JOIN job_attempts a ON a.job_id = j.id GROUP BY j.id, j.status""")
    assert len(rows) == n
    assert all(r["status"] == "completed" and r["done"] == 1 for r in rows), rows


def wait_exit(p: subprocess.Popen[bytes], timeout: float) -> int:
    return p.wait(timeout=timeout)


async def test_sigkill_mid_job_loses_nothing_and_completes_once(deps: Deps, procs: Procs) -> None:
    # long enough that the 6 seen running are still running when the SIGKILL lands
    await jobs.submit_many(deps, [sleep_job(3_000) for _ in range(6)])
    victim = procs.worker("--concurrency", "6")

    async def running() -> bool:
        return (await counts(deps)).get("processing", 0) == 6

    await wait_until(running, message="6 jobs processing in the victim")
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    procs.start("scheduler")
    procs.worker("--concurrency", "6")

    async def all_done() -> bool:
        return (await counts(deps)) == {"completed": 6}

    await wait_until(all_done, timeout=60, message="all jobs completed after the crash")
    await assert_each_completed_once(deps, 6)
    lost = await deps.pool.fetchval(
        "SELECT count(*) FROM job_attempts WHERE outcome = 'lease_expired'")
    assert lost == 6


async def test_sigterm_warm_shutdown_drains_in_flight(deps: Deps, procs: Procs) -> None:
    # long enough that the 4 seen running are still running when the signal lands
    await jobs.submit_many(deps, [sleep_job(2_000) for _ in range(8)])
    w = procs.worker("--concurrency", "4")

    async def four_running() -> bool:
        return (await counts(deps)).get("processing", 0) == 4

    await wait_until(four_running, message="4 jobs processing")
    w.send_signal(signal.SIGTERM)
    assert wait_exit(w, 60) == 0
    c = await counts(deps)
    assert c.get("completed") == 4 and c.get("pending") == 4 and "processing" not in c
    procs.worker("--concurrency", "4")

    async def all_done() -> bool:
        return (await counts(deps)) == {"completed": 8}

    await wait_until(all_done, timeout=60, message="the rest completed by another worker")
    await assert_each_completed_once(deps, 8)


async def test_sigterm_past_grace_releases_leases_at_once(deps: Deps, procs: Procs) -> None:
    await jobs.submit_many(deps, [sleep_job(60_000) for _ in range(3)])
    w = procs.worker("--concurrency", "3", JOBLINE_SHUTDOWN_GRACE_S="0.3")

    async def running() -> bool:
        return (await counts(deps)).get("processing", 0) == 3

    await wait_until(running, message="3 long jobs processing")
    w.send_signal(signal.SIGTERM)
    # the jobs run for 60 s: exiting before that means the grace period cut them off
    assert wait_exit(w, 45) == 0
    # released at once (no scheduler runs to reap them), attempt not counted
    rows = await deps.pool.fetch("SELECT status, attempts FROM jobs")
    assert [(r["status"], r["attempts"]) for r in rows] == [("pending", 0)] * 3
    assert (await deps.dispatch.depth(["default"]))["default"]["ready"] == 3


async def test_second_signal_is_a_cold_shutdown(deps: Deps, procs: Procs) -> None:
    await jobs.submit_many(deps, [sleep_job(60_000)])
    w = procs.worker("--concurrency", "1", JOBLINE_SHUTDOWN_GRACE_S="60")

    async def running() -> bool:
        return (await counts(deps)).get("processing", 0) == 1

    await wait_until(running, message="job processing")
    w.send_signal(signal.SIGTERM)
    w.send_signal(signal.SIGINT)
    assert wait_exit(w, 60) == 0
    assert await counts(deps) == {"pending": 1}


def stubborn_worker(procs: Procs, **env: str) -> subprocess.Popen[bytes]:
    """A worker that also serves ``chaos.stubborn``, a handler that ignores cancellation."""
    tests_dir = str(Path(__file__).parent)
    path = os.pathsep.join([tests_dir, *filter(None, [os.environ.get("PYTHONPATH")])])
    return procs.worker("--app", "chaos.handlers", "--concurrency", "1", PYTHONPATH=path, **env)


async def test_second_signal_forces_the_exit_even_when_a_handler_ignores_cancellation(
        deps: Deps, procs: Procs) -> None:
    """A second signal always ends the process (the cold stop is bounded, then forced), even
    with a handler that cannot be stopped. Before the bound the worker waited for it forever."""
    await jobs.submit_many(deps, [JobSpec(queue="default", job_type="chaos.stubborn",
                                          payload={})])
    w = stubborn_worker(procs, JOBLINE_SHUTDOWN_GRACE_S="60")

    async def running() -> bool:
        return (await counts(deps)).get("processing", 0) == 1

    await wait_until(running, message="job processing")
    w.send_signal(signal.SIGTERM)
    w.send_signal(signal.SIGINT)
    try:
        code = wait_exit(w, 60)
    except subprocess.TimeoutExpired:
        pytest.fail("the worker did not exit after a second signal")
    assert code in (0, 1)  # 1: forced out by the watchdog (the stuck handler kept the loop)
    assert await counts(deps) == {"pending": 1}  # released before the exit, not left to lapse


async def test_poison_pill_stops_at_max_attempts_while_others_flow(deps: Deps,
                                                                   procs: Procs) -> None:
    [pill] = await jobs.submit_many(deps, [JobSpec(queue="default", job_type="demo.crash",
                                                   payload={}, max_attempts=2)])
    await jobs.submit_many(deps, [JobSpec(queue="default", job_type="demo.noop", payload={})
                                  for _ in range(20)])
    procs.start("scheduler")
    procs.worker("--concurrency", "2", "--processes", "2")

    async def settled() -> bool:
        c = await counts(deps)
        return c.get("completed") == 20 and c.get("dead_letter") == 1

    await wait_until(settled, timeout=60, message="noops done and the pill dead-lettered")
    j = await jobs.get_job(deps, pill.submitted.id)
    assert j.attempts == 2 and j.error_type == "lease_expired"
    assert [a.outcome for a in j.attempts_history] == ["lease_expired", "lease_expired"]


async def test_scheduler_fires_delayed_jobs_when_due(deps: Deps, procs: Procs) -> None:
    procs.start("scheduler")
    procs.worker("--concurrency", "4")
    now_ms = int(time.time() * 1000)
    subs = await jobs.submit_many(deps, [JobSpec(queue="default", job_type="demo.noop", payload={},
                                                 scheduled_for_ms=now_ms + 300 + 100 * i)
                                         for i in range(5)])

    async def done() -> bool:
        return (await counts(deps)) == {"completed": 5}

    await wait_until(done, timeout=60, message="delayed jobs completed")
    for s in subs:
        j = await jobs.get_job(deps, s.submitted.id)
        assert j.started_ms is not None
        # never early; how late is a latency figure (bench/suite.py --only delayed), and a
        # loaded machine can make it anything
        assert j.started_ms >= j.scheduled_for_ms, (j.started_ms, j.scheduled_for_ms)


async def test_scheduler_folds_the_queue_counts(deps: Deps, procs: Procs) -> None:
    await jobs.submit_many(deps, [JobSpec(queue="folded", job_type="t", payload={})
                                  for _ in range(3)])
    assert await deps.pool.fetchval("SELECT count(*) FROM queue_count_deltas") > 0
    procs.start("scheduler")

    async def folded() -> bool:
        return (await deps.pool.fetchval("SELECT count(*) FROM queue_count_deltas") == 0
                and await deps.pool.fetchval(
                    "SELECT n FROM queue_counts WHERE queue_name = 'folded' "
                    "AND status = 'pending'") == 3)

    await wait_until(folded, timeout=60, message="the scheduler folded the counts")


async def test_valkey_restarted_empty_under_load_loses_nothing(settings: Settings,
                                                               tmp_path: Path) -> None:
    from jobline.local import EmbeddedValkey

    # A private Valkey, so wiping it cannot disturb other tests.
    valkey = EmbeddedValkey(tmp_path / "valkey", persist=False)
    url = valkey.start()
    s = settings.with_(redis_url=url)
    deps = await connect(s)
    p = Procs(s, tmp_path)
    try:
        await jobs.submit_many(deps, [sleep_job(100) for _ in range(40)])
        p.start("scheduler")
        p.worker("--concurrency", "4")

        async def some_done() -> bool:
            return (await counts(deps)).get("completed", 0) >= 4

        await wait_until(some_done, timeout=60, message="first completions")
        valkey.restart(wipe=True)  # every ready queue, lease and marker is gone

        async def all_done() -> bool:
            return (await counts(deps)) == {"completed": 40}

        await wait_until(all_done, timeout=90, message="all 40 completed after the wipe")
        await assert_each_completed_once(deps, 40)
        assert await deps.dispatch.epoch() is not None  # the scheduler reconciled
    finally:
        p.stop_all()
        await deps.close()
        valkey.stop()
