"""Training as a Jobline job: the built-in schedule is created once, and the scheduler's internal
worker runs ``jobline.ai.train`` into a stored model."""

from __future__ import annotations

import asyncio
import time

import pytest
from test_predict_success import _fold_rollups, _history

from jobline.analytics.ai import jobs as ai_jobs
from jobline.schedulers.runner import Scheduler
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.platform.clock import FakeClock
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.testing import wait_until


@pytest.fixture
def clock() -> FakeClock:
    # the history ends before the real now: the training job reads "the last 7 days" with the
    # system clock of its own connections
    return FakeClock(start_ms=int(time.time() * 1000) - 3 * 3_600_000)


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(backoff_base_ms=1, backoff_cap_ms=1)


async def test_the_daily_schedule_is_created_once(deps: Deps) -> None:
    assert await ai_jobs.ensure_schedule(deps, ai_jobs.DEFAULT_CRON) is True
    assert await ai_jobs.ensure_schedule(deps, ai_jobs.DEFAULT_CRON) is False
    rows = await deps.pool.fetch("SELECT queue_name, job_type, schedule FROM schedules")
    assert [tuple(r) for r in rows] == [(ai_jobs.QUEUE, ai_jobs.TRAIN_JOB_TYPE, "30 3 * * *")]
    assert await ai_jobs.ensure_schedule(deps, "off") is False


async def test_the_internal_worker_trains_a_model(deps: Deps, clock: FakeClock) -> None:
    await _history(deps, clock, 1500, seed=3)
    await _fold_rollups(deps)
    [s] = await jobs.submit_many(deps, [JobSpec(queue=ai_jobs.QUEUE,
                                                job_type=ai_jobs.TRAIN_JOB_TYPE,
                                                payload={"days": 7})])
    worker = Scheduler(deps)._internal_worker()
    task = asyncio.create_task(worker.run())

    async def done() -> bool:
        return (await jobs.get_job(deps, s.submitted.id)).status.value in ("completed",
                                                                          "dead_letter")

    try:
        await wait_until(done, timeout=180, message="the training job finished")
    finally:
        worker.request_stop()
        await task
    job = await jobs.get_job(deps, s.submitted.id)
    assert job.status.value == "completed", job.error
    assert job.result["version"] == 1 and job.result["model"]["rocAuc"] > 0.8
    # the failure model and the retry advisor's recovery table, one version each
    assert await deps.pool.fetchval(
        "SELECT array_agg(kind ORDER BY kind) FROM ai_models") == ["failure_prediction", "retry_advisor"]
    assert job.result["retryAdvisor"]["version"] == 1
