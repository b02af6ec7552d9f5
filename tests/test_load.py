"""Seed Tier-2 criterion "System handles 10K job submissions/sec without data loss": 10,000
concurrent single submissions are each acknowledged once, all committed, all dispatchable, and
then all processed exactly once. (The rate itself is measured by bench/throughput.py, not
asserted here: timing assertions on a shared 2-core machine would only test the neighbours.)"""

from __future__ import annotations

import asyncio
import time

import pytest

from jobline.shared.core.group_commit import GroupCommitter
from jobline.shared.core.models import JobSpec
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.testing import drain

pytestmark = pytest.mark.slow


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(pg_pool_size=8)


async def test_10k_concurrent_submissions_lose_nothing(deps: Deps) -> None:
    import jobline.demo  # noqa: F401  (registers demo.noop)

    n = 10_000
    async with GroupCommitter(deps) as gc:
        it = iter(range(n))

        async def client() -> list[str]:
            acked = []
            for i in it:
                res = await gc.submit(JobSpec(queue="load", job_type="demo.noop",
                                              payload={"i": i}))
                acked.append(str(res.submitted.id))
            return acked

        t0 = time.perf_counter()
        acked = [a for batch in await asyncio.gather(*(client() for _ in range(200)))
                 for a in batch]
        rate = n / (time.perf_counter() - t0)
    assert len(acked) == n == len(set(acked))
    rows = await deps.pool.fetch("SELECT id::text AS id, payload->>'i' AS i FROM jobs")
    assert {r["id"] for r in rows} == set(acked)
    assert sorted(int(r["i"]) for r in rows) == list(range(n))
    assert (await deps.dispatch.depth(["load"]))["load"]["ready"] == n
    print(f"\n10k concurrent submits: {rate:,.0f} jobs/s (durable, group commit)")
    stats = await drain(deps, queues=["load"], concurrency=50, timeout=120)
    assert stats.processed == n
    done = await deps.pool.fetchval(
        "SELECT count(*) FROM job_attempts WHERE outcome = 'completed'")
    assert done == n
