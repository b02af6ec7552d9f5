"""The scheduler's analytics samples (gauges once a minute, hourly compaction) and the retention
of rollups, samples and raw job partitions (issue 16, docs/analytics.md)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from jobline.analytics import samples
from jobline.schedulers.runner import Scheduler
from jobline.shared.core import counts, jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.observe.workers import register_worker
from jobline.shared.platform.clock import FakeClock, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.ids import uuid7_floor
from jobline.testing import wait_until

START = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START + 30 * 60_000)


async def read(deps: Deps, minute_ms: int) -> dict[tuple[str, str], float]:
    rows = await deps.pool.fetch(
        "SELECT metric, subject, value FROM analytics_samples WHERE minute = $1",
        to_dt(minute_ms))
    return {(r["metric"], r["subject"]): r["value"] for r in rows}


async def test_a_sample_records_every_gauge(deps: Deps, clock: FakeClock) -> None:
    await jobs.submit_many(deps, [JobSpec("mail", "send", {"i": i}) for i in range(4)])
    await jobs.submit(deps, JobSpec("mail", "send", {}, delay_ms=600_000))
    clock.advance(5_000)
    assert len(await jobs.claim(deps, "w1", ["mail"], 1)) == 1
    clock.advance(2_000)  # the oldest pending job is now 7 s old
    await register_worker(deps, {"id": "w1", "group": "etl", "concurrency": 8, "running": 3,
                                 "cpuPercent": 42.5, "rssBytes": 123_456_789}, 60_000)
    await deps.pool.execute(
        "INSERT INTO worker_crashes (worker_id, group_name, at) VALUES ('w0', 'etl', $1)",
        to_dt(clock.now_ms() // 60_000 * 60_000 - 30_000))  # in the previous minute
    n = await samples.sample(deps)
    minute = clock.now_ms() // 60_000 * 60_000
    got = await read(deps, minute)
    assert n == len(got)
    assert got[("queue.depth", "mail")] == 3
    assert got[("queue.scheduled", "mail")] == 1
    assert got[("queue.processing", "mail")] == 1
    assert got[("queue.oldest_pending_ms", "mail")] == 7_000
    for subject in ("*", "group:etl"):
        assert got[("workers.count", subject)] == 1
        assert got[("workers.slots", subject)] == 8
        assert got[("workers.busy", subject)] == 3
    assert got[("workers.crashes", "*")] == 1
    assert got[("worker.cpu_pct", "w1")] == 42.5
    assert got[("worker.rss_bytes", "w1")] == 123_456_789
    assert got[("redis.memory_bytes", "*")] > 0
    assert got[("pg.table_bytes", "jobs")] > 0 and got[("pg.database_bytes", "*")] > 0
    assert got[("events.lag", "outbox")] >= 0
    for c in samples.COMPONENTS:
        assert got[("health.up", c)] == 1, c

    # a second reading in the same minute replaces the first (two schedulers, a retried tick)
    await jobs.submit(deps, JobSpec("mail", "send", {}))
    await samples.sample(deps)
    again = await read(deps, minute)
    assert again[("queue.depth", "mail")] == 4 and len(again) == len(got)


async def test_the_hour_rows_compact_the_minute_samples(deps: Deps, clock: FakeClock) -> None:
    hour = clock.now_ms() // 3_600_000 * 3_600_000
    for depth in (5, 1, 9):
        await jobs.submit_many(deps, [JobSpec("q", "t", {}) for _ in range(depth)])
        await samples.sample(deps)
        await deps.pool.execute("DELETE FROM jobs")  # the next minute starts empty
        clock.advance(60_000)
    row = await deps.pool.fetchrow(
        "SELECT * FROM analytics_samples_hour WHERE metric = 'queue.depth' AND subject = 'q' "
        "AND at = $1", to_dt(hour))
    assert row is not None
    assert (row["min"], row["max"], row["last"], row["n"]) == (1, 9, 9, 3)
    assert row["avg"] == pytest.approx(5.0)


async def test_retention_keeps_each_grain_its_time(deps: Deps, clock: FakeClock) -> None:
    now = clock.now_ms()
    old_minute, new_minute = to_dt(now - 8 * 86_400_000), to_dt(now - 6 * 86_400_000)
    old_hour, new_hour = to_dt(now - 400 * 86_400_000), to_dt(now - 380 * 86_400_000)
    for m in (old_minute, new_minute):
        await deps.pool.execute(
            "INSERT INTO job_rollups (minute, queue_name, job_type, submitted) "
            "VALUES ($1, 'q', 't', 1)", m)
        await deps.pool.execute(
            "INSERT INTO analytics_samples VALUES ('queue.depth', 'q', $1, 1)", m)
        await deps.pool.execute(
            "INSERT INTO job_rollup_errors VALUES ($1, 'q', 't', 'E', 1)", m)
    for at in (old_hour, new_hour):
        for t in ("job_rollups_hour", "job_rollups_day"):
            await deps.pool.execute(
                f"INSERT INTO {t} (at, queue_name, job_type, submitted) VALUES ($1, 'q', 't', 1)",
                at)
        await deps.pool.execute(
            "INSERT INTO analytics_samples_hour VALUES ('queue.depth', 'q', $1, 1, 1, 1, 1, 1)",
            at)
    rep = await samples.retention(deps)
    assert rep["deleted"]["job_rollups"] == 1 and rep["deleted"]["job_rollups_day"] == 1
    for t, col, kept in (("job_rollups", "minute", new_minute),
                         ("job_rollup_errors", "minute", new_minute),
                         ("analytics_samples", "minute", new_minute),
                         ("job_rollups_hour", "at", new_hour), ("job_rollups_day", "at", new_hour),
                         ("analytics_samples_hour", "at", new_hour)):
        assert [r[0] for r in await deps.pool.fetch(f"SELECT {col} FROM {t}")] == [kept], t


async def _job_in(deps: Deps, created_ms: int, status: str) -> uuid.UUID:
    jid = uuid.UUID(int=uuid7_floor(created_ms).int | 0x7000_8000_0000_0000_0001)
    await deps.pool.execute(
        "INSERT INTO jobs (id, queue_name, job_type, payload, status, created_at, scheduled_for, "
        "updated_at, completed_at) VALUES ($1, 'old', 't', '{}', $2, $3, $3, $3, $3)",
        jid, status, to_dt(created_ms))
    return jid


async def test_retention_drops_old_partitions_of_final_jobs_only(deps: Deps,
                                                                 clock: FakeClock) -> None:
    jan, oct_, dec = 1_735_689_600_000, 1_759_276_800_000, 1_764_547_200_000  # 2025-01/-10/-12
    for m in (jan, oct_, dec):
        await deps.pool.execute("SELECT jobline_ensure_partitions($1, 1)", to_dt(m))
    await _job_in(deps, jan + 86_400_000, "completed")
    await _job_in(deps, oct_ + 86_400_000, "pending")     # unfinished: its month is kept
    await _job_in(deps, dec + 86_400_000, "dead_letter")  # within 30 days: kept
    assert (await counts.queue_counts(deps))["old"] == {"completed": 1, "pending": 1,
                                                        "dead_letter": 1}
    rep = await samples.retention(deps)
    assert rep["dropped"] == [{"partition": "jobs_p202501", "jobs": 1}]
    names = {r[0] for r in await deps.pool.fetch(
        "SELECT relname FROM pg_class WHERE relname ~ '^job(s|_attempts)_p2025[0-9]{2}$' "
        "AND relkind = 'r'")}
    assert names == {"jobs_p202510", "jobs_p202512", "job_attempts_p202510",
                     "job_attempts_p202512"}
    # the counts stay exact without a scan
    assert (await counts.queue_counts(deps))["old"] == {"pending": 1, "dead_letter": 1}


async def test_the_scheduler_samples_every_minute(deps: Deps, clock: FakeClock) -> None:
    s = Scheduler(deps)
    task = asyncio.create_task(s.run())
    try:
        async def sampled() -> Any:
            return await deps.pool.fetchval(
                "SELECT value FROM analytics_samples WHERE metric = 'health.up' "
                "AND subject = 'scheduler' AND minute = $1",
                to_dt(clock.now_ms() // 60_000 * 60_000))

        assert await wait_until(sampled, timeout=60, message="a scheduler sample") == 1
        assert await wait_until(lambda: deps.pool.fetchval(
            "SELECT count(*) FROM analytics_samples_hour WHERE metric = 'health.up'"),
            timeout=60, message="the hour compaction")
    finally:
        s.request_stop()
        await asyncio.wait_for(task, 60)
