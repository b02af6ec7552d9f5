"""Queue counts without scanning ``jobs`` (migration 0015, jobline.shared.core.counts).

The maintained counts must equal ``SELECT queue_name, status, count(*) FROM jobs GROUP BY 1, 2``
after every step of a seeded random mix of every path that writes ``jobs`` (single, bulk and COPY
submits, dependencies, claims, completes, retries, dead letters, snoozes, releases, cancels, manual
and DLQ retries, DLQ deletes, lease reaps, partition drops, TRUNCATE), folded or not in between.
"""

from __future__ import annotations

import contextlib
import random
import uuid
from typing import Any

import pytest

from jobline.shared.core import counts, jobs, maintenance, sql
from jobline.shared.core.models import ClaimedJob, DlqFilter, JobSpec, Outcome, Status
from jobline.shared.platform.clock import FakeClock, to_dt
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import IllegalTransition, NotFound
from jobline.shared.retry import dlq

QUEUES = ("qa", "qb", "qc")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(backoff_base_ms=1, backoff_cap_ms=1)


async def scanned(deps: Deps) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in await deps.pool.fetch(sql.QUEUE_COUNTS_SCAN):
        out.setdefault(r["queue_name"], {})[r["status"]] = r["n"]
    return out


async def assert_exact(deps: Deps, where: str) -> None:
    maintained = await counts.queue_counts(deps)
    assert maintained == await scanned(deps), where


def spec(rng: random.Random, **kw: Any) -> JobSpec:
    return JobSpec(queue=rng.choice(QUEUES), job_type=rng.choice(("a", "b")),
                   payload={"n": rng.randrange(1000)}, max_attempts=rng.randint(1, 3), **kw)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_counts_equal_a_group_by_through_a_random_mix(deps: Deps, clock: FakeClock,
                                                           seed: int) -> None:
    rng = random.Random(seed)
    held: list[ClaimedJob] = []
    ids: list[uuid.UUID] = []
    seen: set[str] = set()
    for step in range(120):
        op = rng.choice(["submit", "bulk", "copy", "deps", "claim", "claim", "complete",
                         "complete", "fail", "fail", "snooze", "release", "cancel", "retry_now",
                         "dlq_retry", "dlq_delete", "reap", "promote", "fold", "fold"])
        seen.add(op)
        if op == "submit":
            r = await jobs.submit(deps, spec(rng, delay_ms=rng.choice([None, None, 5_000])))
            ids.append(r.submitted.id)
        elif op == "bulk":
            rs = await jobs.submit_many(deps, [spec(rng) for _ in range(rng.randint(2, 20))])
            ids += [r.submitted.id for r in rs]
        elif op == "copy":
            # at least COPY_MIN_JOBS: the binary COPY path
            rs = await jobs.submit_many(deps, [spec(rng) for _ in range(jobs.COPY_MIN_JOBS + 4)])
            ids += [r.submitted.id for r in rs]
        elif op == "deps" and ids:
            # a dependent waits until its dependency completes
            rs = await jobs.submit_many(deps, [spec(rng, depends_on=(rng.choice(ids),))])
            ids += [r.submitted.id for r in rs]
        elif op == "claim":
            held += await jobs.claim(deps, f"w{step}", list(QUEUES), rng.randint(1, 40))
        elif op in ("complete", "fail", "snooze", "release") and held:
            rng.shuffle(held)
            k = rng.randint(1, min(len(held), 30))
            batch, held = held[:k], held[k:]
            if op == "complete":
                await jobs.complete(deps, [Outcome(c.id, c.token, ok=True) for c in batch])
            elif op == "fail":
                await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="boom",
                                               error_type="E", final=rng.random() < 0.3)
                                       for c in batch], [c.attempt for c in batch])
            elif op == "snooze":
                await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, retry_after_ms=2_000,
                                               burn_attempt=False) for c in batch],
                                [c.attempt for c in batch])
            else:
                await jobs.release(deps, [(c.id, c.token) for c in batch])
        elif op == "cancel" and ids:
            for i in rng.sample(ids, min(len(ids), 3)):
                with contextlib.suppress(IllegalTransition, NotFound):
                    await jobs.cancel(deps, i)
        elif op == "retry_now" and ids:
            with contextlib.suppress(IllegalTransition, NotFound):
                await jobs.retry_now(deps, rng.choice(ids))
        elif op == "dlq_retry":
            await dlq.retry_dead_letters(deps, DlqFilter(queue=rng.choice(QUEUES)))
        elif op == "dlq_delete":
            await dlq.delete_dead_letters(deps, DlqFilter(queue=rng.choice(QUEUES)))
        elif op == "reap":
            clock.advance(rng.choice([1_000, 10 * 60_000]))
            await maintenance.reap_expired_leases(deps)
        elif op == "promote":
            clock.advance(6_000)
            await maintenance.promote_due(deps)
        elif op == "fold":
            assert await counts.fold(deps) >= 0
        await assert_exact(deps, f"seed {seed}, step {step}: after {op}")
    # the mix really exercised the paths it claims to
    assert {"copy", "claim", "complete", "fail", "dlq_delete", "fold"} <= seen
    statuses = {s for c in (await scanned(deps)).values() for s in c}
    assert {"pending", "completed"} <= statuses
    await counts.fold(deps)
    assert await deps.pool.fetchval("SELECT count(*) FROM queue_count_deltas") == 0
    await assert_exact(deps, "after the last fold")


async def test_heartbeats_append_nothing_and_a_fold_empties_the_deltas(deps: Deps) -> None:
    await jobs.submit_many(deps, [JobSpec(queue="q", job_type="t", payload={}) for _ in range(5)])
    claimed = await jobs.claim(deps, "w", ["q"], 5)
    assert await counts.fold(deps) > 0
    await jobs.heartbeat(deps, [("w", c.id, c.token) for c in claimed])
    assert await deps.pool.fetchval("SELECT count(*) FROM queue_count_deltas") == 0
    assert await counts.queue_counts(deps) == {"q": {"processing": 5}}


async def test_a_claim_batch_appends_one_row_per_status_changed(deps: Deps) -> None:
    await jobs.submit_many(deps, [JobSpec(queue="q", job_type="t", payload={})
                                  for _ in range(50)])
    await counts.fold(deps)
    await jobs.claim(deps, "w", ["q"], 50)
    rows = await deps.pool.fetch("SELECT status, delta FROM queue_count_deltas ORDER BY status")
    assert [(r["status"], r["delta"]) for r in rows] == [("pending", -50), ("processing", 50)]


async def test_a_read_with_many_unfolded_rows_folds_them(
        deps: Deps, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counts, "FOLD_ON_READ_ROWS", 3)
    for _ in range(5):
        await jobs.submit(deps, JobSpec(queue="q", job_type="t", payload={}))
    assert await counts.queue_counts(deps) == {"q": {"pending": 5}}
    assert await deps.pool.fetchval("SELECT count(*) FROM queue_count_deltas") == 0
    assert await counts.queue_counts(deps) == {"q": {"pending": 5}}


async def test_a_fold_while_another_holds_the_lock_skips_and_loses_nothing(deps: Deps) -> None:
    await jobs.submit(deps, JobSpec(queue="q", job_type="t", payload={}))
    async with deps.pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(7261531)")
        assert await counts.fold(deps) == -1
    assert await counts.queue_counts(deps) == {"q": {"pending": 1}}
    assert await counts.fold(deps) == 1
    assert await counts.queue_counts(deps) == {"q": {"pending": 1}}


async def test_uncommitted_deltas_are_left_for_a_later_fold(deps: Deps) -> None:
    await jobs.submit(deps, JobSpec(queue="q", job_type="t", payload={}))
    async with deps.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("UPDATE jobs SET status = 'cancelled' WHERE queue_name = 'q'")
        assert await counts.fold(deps) == 1  # the submit's row; the open UPDATE's is invisible
        await tx.commit()
    assert await counts.queue_counts(deps) == {"q": {"cancelled": 1}}
    assert await counts.fold(deps) == 2
    assert await counts.queue_counts(deps) == await scanned(deps)


async def test_dropping_a_partition_takes_its_jobs_out_of_the_counts(
        deps: Deps, clock: FakeClock) -> None:
    # the fake clock's month (2026-01) has no partition of its own until asked for
    await deps.pool.execute("SELECT jobline_ensure_partitions($1, 1)", to_dt(clock.now_ms()))
    await jobs.submit(deps, JobSpec(queue="q", job_type="t", payload={}))
    part = await deps.pool.fetchval(
        "SELECT tableoid::regclass::text FROM jobs WHERE queue_name = 'q'")
    assert part.startswith("jobs_p")
    await jobs.submit(deps, JobSpec(queue="other", job_type="t", payload={},
                                    scheduled_for_ms=clock.now_ms()))
    assert await deps.pool.fetchval("SELECT jobline_drop_jobs_partition($1)", part) == 2
    assert await counts.queue_counts(deps) == await scanned(deps) == {}
    with pytest.raises(Exception, match="not a monthly jobs partition"):
        await deps.pool.execute("SELECT jobline_drop_jobs_partition('queues')")


async def test_truncate_resets_the_counts(deps: Deps) -> None:
    await jobs.submit(deps, JobSpec(queue="q", job_type="t", payload={}))
    await counts.fold(deps)
    await jobs.submit(deps, JobSpec(queue="q", job_type="t", payload={}))
    await deps.pool.execute("TRUNCATE jobs CASCADE")
    assert await counts.queue_counts(deps) == {}


async def test_queue_stats_and_the_dlq_total_read_the_counts(deps: Deps) -> None:
    subs = await jobs.submit_many(deps, [JobSpec(queue="q", job_type="t", payload={},
                                                 max_attempts=1) for _ in range(4)])
    claimed = await jobs.claim(deps, "w", ["q"], 3)
    await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="x") for c in claimed[:2]],
                    [c.attempt for c in claimed[:2]])
    await jobs.complete(deps, [Outcome(claimed[2].id, claimed[2].token, ok=True)])
    # Counts come from queue_counts: a row written there (and nowhere in jobs) shows, which a
    # GROUP BY over jobs could not produce.
    await deps.pool.execute("INSERT INTO queue_counts VALUES ('ghost', 'dead_letter', 7)")
    stats = {q["name"]: q for q in await jobs.queue_stats(deps)}
    assert (stats["q"]["pending"], stats["q"]["deadLetter"], stats["q"]["completed"]) == (1, 2, 1)
    assert stats["ghost"]["deadLetter"] == 7
    assert await dlq.count_dead_letters(deps) == 9
    assert await dlq.count_dead_letters(deps, DlqFilter(queue="q")) == 2
    # a finer filter still counts rows
    assert await dlq.count_dead_letters(deps, DlqFilter(queue="q", error_type="nope")) == 0
    assert subs[3].submitted.status == Status.PENDING
