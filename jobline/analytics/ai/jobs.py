"""Training as a Jobline job: the built-in ``jobline.ai.train`` job type on the internal
``jobline.ai`` queue, served by the scheduler process's internal worker (with the alert
deliveries), and the daily schedule ``jobline run`` creates for it.

The handler trains in a thread with its own event loop and connections: parsing a few hundred
thousand attempts is CPU-bound Python, and the scheduler's own loop (timers, reaper, cron) must
keep its pace meanwhile.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.worker.registry import JobContext, Registry

QUEUE = "jobline.ai"
TRAIN_JOB_TYPE = "jobline.ai.train"
SCHEDULE_NAME = "jobline.ai.train"
#: Daily, at a quiet hour; ``JOBLINE_AI_TRAIN_CRON=off`` creates no schedule.
DEFAULT_CRON = "30 3 * * *"
LOCK_KEY = 0x6A6C61690002


def _train_in_own_loop(settings: Settings, days: int) -> dict[str, Any]:
    from jobline.analytics.ai import training

    async def go() -> dict[str, Any]:
        deps = await connect(settings, pool_size=2)
        try:
            return await training.train_all(deps, days=days)
        finally:
            await deps.close()

    return asyncio.run(go())


def register(reg: Registry, deps: Deps) -> None:
    @reg.job(TRAIN_JOB_TYPE, queue=QUEUE, timeout=3600, max_attempts=2)
    async def train(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        days = int(payload.get("days", 7))
        out = await asyncio.to_thread(_train_in_own_loop, deps.settings, days)
        return {"version": out["version"], "model": out["model"], "baseline": out["baseline"],
                "retryAdvisor": {k: out["retryAdvisor"][k] for k in ("version", "followUps")}}


async def ensure_schedule(deps: Deps, cron: str) -> bool:
    """Create the daily training schedule unless one with its name exists (True: created)."""
    from jobline.shared.schedules.recurring import ScheduleSpec, create_schedule

    if cron.strip().lower() in ("off", ""):
        return False
    async with deps.pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            if await conn.fetchval("SELECT 1 FROM schedules WHERE name = $1", SCHEDULE_NAME):
                return False
            await create_schedule(deps, ScheduleSpec(
                name=SCHEDULE_NAME, queue=QUEUE, job_type=TRAIN_JOB_TYPE, payload={"days": 7},
                schedule=cron, overlap_policy="skip", catch_up="run_once"))
            return True
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
