"""Claims that Redis grants and Postgres refuses, and whose clock a lease is on (issue 13,
defects 3 and 8), against real PostgreSQL + Valkey."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest

from jobline.shared.core import jobs, maintenance
from jobline.shared.core.models import JobSpec
from jobline.shared.dispatch import queue_controls, rate_limits
from jobline.shared.dispatch.redis_dispatch import Dispatch, ready_score
from jobline.shared.platform.clock import FakeClock, from_dt
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, create_redis

LEASE_MS = 10_000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(lease_ms=LEASE_MS)


@pytest.fixture
def deps(deps: Deps) -> Deps:
    deps.rng = random.Random(7)  # reproducible jitter
    return deps


def spec(queue: str, **kw: Any) -> JobSpec:
    return JobSpec(queue=queue, job_type="t", payload={}, **kw)


async def submit(deps: Deps, queue: str, n: int) -> list[uuid.UUID]:
    return [r.submitted.id for r in await jobs.submit_many(deps, [spec(queue)] * n)]


async def cancel_in_postgres_only(deps: Deps, job_id: uuid.UUID) -> None:
    """A cancel whose Redis mirror was lost (crash between commit and mirror): the job is still
    in ready, Postgres will refuse to start it."""
    await deps.pool.execute("UPDATE jobs SET status = 'cancelled' WHERE id = $1", job_id)


# --- defect 3: ids Redis hands out but Postgres refuses ------------------------------------


async def test_refused_claim_frees_its_slot_of_a_capped_queue(deps: Deps) -> None:
    await queue_controls.set_queue_limits(deps, "c", max_in_flight=1)
    a, b = await submit(deps, "c", 2)
    await cancel_in_postgres_only(deps, a)
    assert await jobs.claim(deps, "w", ["c"], 1) == []  # Redis popped a, Postgres refused it
    assert await deps.redis.zcard(deps.dispatch.keys("c").leases) == 0
    assert [j.id for j in await jobs.claim(deps, "w", ["c"], 1)] == [b]


async def test_refused_claim_gives_back_its_rate_limit_entry(deps: Deps) -> None:
    await rate_limits.set_rate_limit(deps, "r", limit=1, window_ms=60_000)
    a, b = await submit(deps, "r", 2)
    await cancel_in_postgres_only(deps, a)
    assert await jobs.claim(deps, "w", ["r"], 1) == []
    assert await deps.redis.zcard(deps.dispatch.keys("r").rate) == 0
    assert [j.id for j in await jobs.claim(deps, "w", ["r"], 1)] == [b]


async def test_refused_claim_of_a_job_running_elsewhere_keeps_the_owners_lease(
        deps: Deps, clock: FakeClock) -> None:
    """A stale ready entry of a job another worker runs: the refused claim must not steal or
    drop the owner's lease entry (it counts against the cap and is what the sweep checks)."""
    [a] = await submit(deps, "q", 1)
    [owned] = await jobs.claim(deps, "w1", ["q"], 1)
    keys = deps.dispatch.keys("q")
    await deps.redis.zadd(keys.ready, {str(a): ready_score(0, 1)})  # the stale entry
    clock.advance(3_000)
    assert await jobs.claim(deps, "w2", ["q"], 1) == []
    assert await deps.redis.zscore(keys.leases, str(a)) == owned.lease_expires_ms
    row = await deps.pool.fetchrow("SELECT status, worker_id FROM jobs WHERE id = $1", a)
    assert (row["status"], row["worker_id"]) == ("processing", "w1")


# --- defect 8: one clock per comparison --------------------------------------------------


async def valkey_ms(deps: Deps) -> int:
    secs, micros = await deps.redis.time()
    return int(secs) * 1000 + int(micros) // 1000


async def test_wait_and_claim_leases_on_the_application_clock_under_skew(
        deps: Deps, settings: Settings, clock: FakeClock) -> None:
    """The application clock (``deps.clock``) is ten minutes ahead of Valkey's. The lease and
    ``started_at`` a wait-and-claim writes must both be on the application clock, which is the
    one the reaper compares them with; a job due by that clock is claimable."""
    clock.set(await valkey_ms(deps) + 600_000)
    block = Dispatch(create_redis(settings.redis_url or "", blocking=True), settings.redis_prefix,
                     settings.redis_slot_groups)
    try:
        [due] = [r.submitted.id for r in await jobs.submit_many(
            deps, [spec("q", delay_ms=60_000)])]
        clock.advance(60_000)  # due now by the application clock, not yet by Valkey's
        res = await asyncio.wait_for(
            jobs.wait_and_claim(deps, block, "w", ["q"], 0.01, ["q"], 5), 10)
        assert [j.id for j in res.jobs] == [due]
        row = await deps.pool.fetchrow(
            "SELECT started_at, lease_expires_at FROM jobs WHERE id = $1", due)
        started, lease = from_dt(row["started_at"]), from_dt(row["lease_expires_at"])
        # on the application clock (never before it was due, see _claim_popped)
        assert 0 <= started - clock.now_ms() < 5_000
        # on the same clock, up to the offset's measuring error (the test clock stands still
        # while Valkey's runs; before the fix the two were ten minutes apart)
        assert abs(started + LEASE_MS - lease) < 5_000
        # the scheduler, on the same clock, does not reap a lease that has not run out
        clock.advance(LEASE_MS // 2)
        assert (await maintenance.reap_expired_leases(deps)).expired == 0
        clock.advance(LEASE_MS)
        assert (await maintenance.reap_expired_leases(deps)).expired == 1
    finally:
        await block.r.aclose()
