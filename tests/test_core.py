"""The core operations against real PostgreSQL + Valkey, with an injected clock."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest

from jobline.shared.core import jobs, maintenance, sql
from jobline.shared.core.models import JobSpec, Outcome, Status
from jobline.shared.platform.clock import FakeClock, from_dt, to_dt
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import IllegalTransition, NotFound, ValidationFailed


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(lease_ms=10_000, backoff_base_ms=1_000, backoff_cap_ms=60_000)


@pytest.fixture
def deps(deps: Deps) -> Deps:
    deps.rng = random.Random(7)  # reproducible jitter
    return deps


def spec(queue: str = "q", job_type: str = "t", **kw: object) -> JobSpec:
    return JobSpec(queue=queue, job_type=job_type, payload=kw.pop("payload", {"n": 1}),  # type: ignore[arg-type]
                   **kw)  # type: ignore[arg-type]


async def status_of(deps: Deps, job_id: uuid.UUID) -> str:
    return str(await deps.pool.fetchval("SELECT status FROM jobs WHERE id = $1", job_id))


async def test_lifecycle_submit_claim_complete(deps: Deps, clock: FakeClock) -> None:
    res = await jobs.submit(deps, spec(payload={"email": "a@b.c"}))
    job_id = res.submitted.id
    assert res.submitted.status == Status.PENDING
    assert res.queue_position == 1
    job = await jobs.get_job(deps, job_id)
    assert job.status == Status.PENDING and job.attempts == 0 and job.payload == {"email": "a@b.c"}

    clock.advance(5)
    [c] = await jobs.claim(deps, "w1", ["q"], 10)
    assert c.id == job_id and c.attempt == 1 and c.token == 1 and c.payload == {"email": "a@b.c"}
    job = await jobs.get_job(deps, job_id)
    assert job.status == Status.PROCESSING and job.started_ms == clock.now_ms()
    assert job.worker_id == "w1"

    clock.advance(20)
    rep = await jobs.complete(deps, [Outcome(c.id, c.token, ok=True, result={"sent": True})])
    assert rep.accepted == [job_id] and rep.rejected == []
    job = await jobs.get_job(deps, job_id)
    assert job.status == Status.COMPLETED and job.result == {"sent": True}
    assert job.completed_ms == clock.now_ms()
    assert [(a.attempt, a.outcome, a.duration_ms) for a in job.attempts_history] == [
        (1, "completed", 20)]
    # nothing left to dispatch
    assert await jobs.claim(deps, "w1", ["q"], 10) == []
    depth = await deps.dispatch.depth(["q"])
    assert depth["q"] == {"ready": 0, "delayed": 0, "leased": 0}


async def test_claim_batch_respects_n_and_priority_fifo(deps: Deps) -> None:
    prios = [5, 9, 5, 0, 9, 10, 5]
    subs = await jobs.submit_many(deps, [spec(priority=p) for p in prios])
    expected = [s.submitted.id for _, _, s in sorted(
        ((-p, i, s) for i, (p, s) in enumerate(zip(prios, subs, strict=True))),
        key=lambda t: (t[0], t[1]))]
    got = await jobs.claim(deps, "w", ["q"], 3)
    assert len(got) == 3
    got += await jobs.claim(deps, "w", ["q"], 10)
    assert [c.id for c in got] == expected


async def test_retry_uses_exponential_backoff_with_full_jitter(deps: Deps, clock: FakeClock) -> None:
    [s] = await jobs.submit_many(deps, [spec(max_attempts=4)])
    job_id = s.submitted.id
    ceilings = []
    for attempt in (1, 2, 3):
        [c] = await jobs.claim(deps, "w", ["q"], 1)
        assert c.attempt == attempt
        now = clock.now_ms()
        rep = await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="boom",
                                             error_type="connection_refused")], [c.attempt])
        assert rep.accepted == [job_id]
        job = await jobs.get_job(deps, job_id)
        delay = job.scheduled_for_ms - now
        ceiling = 1_000 * 2 ** (attempt - 1)
        ceilings.append(ceiling)
        assert 0 <= delay <= ceiling, (attempt, delay)
        assert job.status in (Status.SCHEDULED, Status.PENDING)
        assert job.error == "boom" and job.error_type == "connection_refused"
        # not claimable before it is due (unless jitter picked 0)
        if delay > 0:
            assert await jobs.claim(deps, "w", ["q"], 1) == []
        clock.advance(delay)
    [c] = await jobs.claim(deps, "w", ["q"], 1)
    assert c.attempt == 4
    rep = await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="boom4",
                                         error_type="connection_refused")], [c.attempt])
    assert rep.statuses[job_id] == Status.DEAD_LETTER
    job = await jobs.get_job(deps, job_id)
    assert job.status == Status.DEAD_LETTER and job.attempts == 4 and job.completed_ms is not None
    assert [a.attempt for a in job.attempts_history] == [1, 2, 3, 4]
    assert await jobs.claim(deps, "w", ["q"], 1) == []


async def test_backoff_delays_are_deterministic_with_a_seeded_rng(settings: Settings) -> None:
    from jobline.shared.retry.backoff import Backoff

    b = Backoff(base_ms=100, factor=3, cap_ms=1_000)
    assert [b.ceiling_ms(n) for n in (1, 2, 3, 4)] == [100, 300, 900, 1_000]
    r1, r2 = random.Random(1), random.Random(1)
    assert [b.delay_ms(n, r1) for n in range(1, 6)] == [b.delay_ms(n, r2) for n in range(1, 6)]
    assert Backoff(100, 2, 1_000, jitter=False).delay_ms(3, random.Random()) == 400


async def test_non_burning_retry_and_final_failure(deps: Deps, clock: FakeClock) -> None:
    [s] = await jobs.submit_many(deps, [spec(max_attempts=2)])
    [c] = await jobs.claim(deps, "w", ["q"], 1)
    await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="slow down",
                                   error_type="rate_limited", retry_after_ms=0,
                                   burn_attempt=False)], [c.attempt])
    job = await jobs.get_job(deps, s.submitted.id)
    assert job.status == Status.PENDING and job.attempts == 0
    [c] = await jobs.claim(deps, "w", ["q"], 1)
    assert c.attempt == 1 and c.token == 2
    await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="bad input",
                                   error_type="validation_error", final=True)], [c.attempt])
    job = await jobs.get_job(deps, s.submitted.id)
    assert job.status == Status.DEAD_LETTER and job.attempts == 1


async def test_fencing_rejects_stale_token(deps: Deps, clock: FakeClock) -> None:
    [s] = await jobs.submit_many(deps, [spec()])
    [c1] = await jobs.claim(deps, "w1", ["q"], 1)
    clock.advance(11_000)  # past the 10 s lease
    rep = await maintenance.reap_expired_leases(deps)
    assert rep.expired == 1
    job = await jobs.get_job(deps, s.submitted.id)
    assert job.attempts_history[0].outcome == "lease_expired"
    clock.advance(job.scheduled_for_ms - clock.now_ms())
    [c2] = await jobs.claim(deps, "w2", ["q"], 1)
    assert c2.token == c1.token + 1 and c2.attempt == 2
    late = await jobs.complete(deps, [Outcome(c1.id, c1.token, ok=True, result={"who": "w1"})])
    assert late.rejected == [c1.id] and late.accepted == []
    ok = await jobs.complete(deps, [Outcome(c2.id, c2.token, ok=True, result={"who": "w2"})])
    assert ok.accepted == [c2.id]
    again = await jobs.complete(deps, [Outcome(c2.id, c2.token, ok=True, result={"who": "x"})])
    assert again.rejected == [c2.id]
    job = await jobs.get_job(deps, s.submitted.id)
    assert job.result == {"who": "w2"}
    n = await deps.pool.fetchval(
        "SELECT count(*) FROM job_attempts WHERE job_id = $1 AND outcome = 'completed'", c2.id)
    assert n == 1


async def test_heartbeat_extends_lease_and_reports_lost_jobs(deps: Deps, clock: FakeClock) -> None:
    subs = await jobs.submit_many(deps, [spec(), spec()])
    c1, c2 = await jobs.claim(deps, "w", ["q"], 2)
    clock.advance(8_000)
    lost = await jobs.extend_leases(deps, [("q", c1.id, c1.token), ("q", c2.id, c2.token + 5)])
    assert lost == [c2.id]
    clock.advance(3_000)  # c2's lease (10 s) expired, c1's was extended to 18 s
    rep = await maintenance.reap_expired_leases(deps)
    assert rep.expired == 1
    assert await status_of(deps, c1.id) == "processing"
    assert await status_of(deps, subs[1].submitted.id) in ("pending", "scheduled")


async def test_crash_between_redis_pop_and_postgres_claim_is_recovered(
        deps: Deps, clock: FakeClock) -> None:
    [s] = await jobs.submit_many(deps, [spec()])
    now = clock.now_ms()
    popped, _ = await deps.dispatch.claim(["q"], 1, now, now + 10_000)
    assert [i for _, i in popped] == [s.submitted.id]  # then the "worker" dies
    assert await jobs.claim(deps, "w", ["q"], 1) == []
    clock.advance(10_001)
    rep = await maintenance.reap_expired_leases(deps)
    assert rep.stale_redis_leases == 1
    [c] = await jobs.claim(deps, "w", ["q"], 1)
    assert c.id == s.submitted.id and c.attempt == 1


async def test_flushall_then_reconcile_loses_nothing(deps: Deps, clock: FakeClock) -> None:
    subs = await jobs.submit_many(deps, [spec(priority=i % 11) for i in range(50)])
    delayed = await jobs.submit(deps, spec(scheduled_for_ms=clock.now_ms() + 60_000))
    running = await jobs.claim(deps, "w", ["q"], 5)
    await deps.redis.flushall()
    assert await deps.dispatch.epoch() is None
    rep = await maintenance.ensure_dispatch_state(deps)
    assert rep is not None and rep.scanned == 51 and rep.added == 51
    depth = (await deps.dispatch.depth(["q"]))["q"]
    assert depth == {"ready": 45, "delayed": 1, "leased": 5}
    # a second reconcile is a no-op
    assert (await maintenance.reconcile(deps)).added == 0
    # everything still completes exactly once, in priority order
    rest = await jobs.claim(deps, "w", ["q"], 100)
    assert len(rest) == 45
    assert [c.id for c in rest] == [
        s.submitted.id for s in sorted(subs, key=lambda s: -(subs.index(s) % 11) * 10**6
                                       + subs.index(s))
        if s.submitted.id not in {r.id for r in running}]
    await jobs.complete(deps, [Outcome(c.id, c.token, ok=True) for c in running + rest])
    clock.advance(60_000)
    [d] = await jobs.claim(deps, "w", ["q"], 10)
    assert d.id == delayed.submitted.id
    await jobs.complete(deps, [Outcome(d.id, d.token, ok=True)])
    counts = dict(await deps.pool.fetch("SELECT status, count(*) FROM jobs GROUP BY status"))
    assert counts == {"completed": 51}


async def test_delayed_job_is_promoted_when_due(deps: Deps, clock: FakeClock) -> None:
    res = await jobs.submit(deps, spec(scheduled_for_ms=clock.now_ms() + 5_000))
    assert res.submitted.status == Status.SCHEDULED and res.queue_position is None
    assert await jobs.claim(deps, "w", ["q"], 1) == []
    moved, nxt = await maintenance.promote_due(deps)
    assert moved == 0 and nxt == clock.now_ms() + 5_000
    clock.advance(5_000)
    moved, nxt = await maintenance.promote_due(deps)
    assert moved == 1 and nxt is None
    [c] = await jobs.claim(deps, "w", ["q"], 1)
    assert c.id == res.submitted.id


async def test_cancel_and_retry_now(deps: Deps) -> None:
    a, b = await jobs.submit_many(deps, [spec(), spec(max_attempts=1)])
    assert await jobs.cancel(deps, a.submitted.id) == Status.CANCELLED
    with pytest.raises(IllegalTransition):
        await jobs.cancel(deps, a.submitted.id)
    [c] = await jobs.claim(deps, "w", ["q"], 5)  # only b: a was removed from dispatch
    assert c.id == b.submitted.id
    # (cancel of a processing job records a request: tests/test_cancellation.py)
    with pytest.raises(IllegalTransition):
        await jobs.retry_now(deps, c.id)
    await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="x", error_type="error")], [1])
    assert await status_of(deps, c.id) == "dead_letter"
    assert await jobs.retry_now(deps, c.id) == Status.PENDING
    [c2] = await jobs.claim(deps, "w", ["q"], 5)
    assert c2.id == c.id and c2.attempt == 1
    with pytest.raises(NotFound):
        await jobs.cancel(deps, uuid.uuid4())
    with pytest.raises(NotFound):
        await jobs.retry_now(deps, uuid.uuid4())


async def test_idempotency_key_dedupes_concurrent_and_in_batch(deps: Deps) -> None:
    results = await asyncio.gather(*[
        jobs.submit(deps, spec(idempotency_key="order-42")) for _ in range(10)])
    ids = {r.submitted.id for r in results}
    assert len(ids) == 1
    assert sum(1 for r in results if not r.submitted.duplicate) == 1
    batch = await jobs.submit_many(deps, [spec(idempotency_key="k2"), spec(idempotency_key="k2"),
                                          spec(idempotency_key="order-42")])
    assert batch[0].submitted.id == batch[1].submitted.id and batch[1].submitted.duplicate
    assert batch[2].submitted.id in ids and batch[2].submitted.duplicate
    assert await deps.pool.fetchval("SELECT count(*) FROM jobs") == 2


async def test_bulk_submit_is_all_or_nothing(deps: Deps) -> None:
    with pytest.raises(ValidationFailed) as e:
        await jobs.submit_many(deps, [spec(), spec(priority=11), spec()])
    assert e.value.field == "jobs[1].priority"
    with pytest.raises(ValidationFailed) as e:
        await jobs.submit_many(deps, [spec(queue="bad queue!")])
    assert e.value.field == "queue"
    assert await deps.pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_payload_too_large_is_rejected(deps: Deps) -> None:
    from jobline.shared.platform.errors import PayloadTooLarge

    with pytest.raises(PayloadTooLarge):
        await jobs.submit(deps, spec(payload={"blob": "x" * 300_000}))
    assert await deps.pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_release_gives_the_attempt_back(deps: Deps) -> None:
    [s] = await jobs.submit_many(deps, [spec()])
    [c] = await jobs.claim(deps, "w", ["q"], 1)
    rep = await jobs.release(deps, [(c.id, c.token)])
    assert rep.statuses[c.id] == Status.PENDING
    job = await jobs.get_job(deps, s.submitted.id)
    assert job.attempts == 0 and job.attempts_history[0].outcome == "released"
    [c2] = await jobs.claim(deps, "w", ["q"], 1)
    assert c2.attempt == 1


async def test_jobs_land_in_time_partitions(deps: Deps, clock: FakeClock) -> None:
    from jobline.shared.platform.ids import uuid7_ms

    [s] = await jobs.submit_many(deps, [spec()])
    # the clock's millisecond, or a little later: ids are monotonic within the process, and
    # earlier tests may have taken this millisecond's counter
    assert 0 <= uuid7_ms(s.submitted.id) - clock.now_ms() < 10_000
    await deps.pool.execute("SELECT jobline_ensure_partitions($1, 1)",
                            __import__("jobline.shared.platform.clock", fromlist=["to_dt"]).to_dt(
                                clock.now_ms() + 40 * 86_400_000))
    part = await deps.pool.fetchval(
        "SELECT tableoid::regclass::text FROM jobs WHERE id = $1", s.submitted.id)
    assert part in ("jobs_p202601", "jobs_default")
    # a job created "now" (system time) goes into the current month's partition
    from jobline.shared.platform.clock import SYSTEM_CLOCK

    d2 = Deps(deps.pool, deps.redis, deps.dispatch, SYSTEM_CLOCK, deps.settings)
    [s2] = await jobs.submit_many(d2, [spec()])
    part2 = await deps.pool.fetchval(
        "SELECT tableoid::regclass::text FROM jobs WHERE id = $1", s2.submitted.id)
    created = await deps.pool.fetchval("SELECT created_at FROM jobs WHERE id = $1",
                                       s2.submitted.id)
    assert part2 == f"jobs_p{created.strftime('%Y%m')}"
    assert from_dt(created) == uuid7_ms(s2.submitted.id)


async def test_core_validation_names_fields_and_refuses_nul(deps: Deps) -> None:
    cases = [(spec(payload={"k": "a\x00b"}), "payload"), (spec(queue="q\n"), "queue"),
             (spec(job_type="t\n"), "jobType"), (spec(idempotency_key="a\x00"), "idempotencyKey"),
             (spec(max_attempts=0), "maxAttempts"), (spec(backoff={"baseMs": -1}), "backoff.baseMs")]
    for bad, field in cases:
        with pytest.raises(ValidationFailed) as e:
            await jobs.submit(deps, bad)
        assert e.value.field == field
    assert await deps.pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_recent_sweep_dispatches_a_submit_whose_mirror_was_lost(
        deps: Deps, clock: FakeClock) -> None:
    """A submitter that dies between its Postgres commit and its Redis mirror leaves a pending
    job outside Redis; the scheduler's recent sweep finds it by its time-ordered id."""
    t0 = clock.now_ms()
    lost, kept = await jobs.submit_many(deps, [spec(), spec()])
    await deps.dispatch.remove([("q", lost.submitted.id)])  # the mirror that never happened
    clock.advance(6_000)
    early = await maintenance.reconcile_recent(deps, t0 + 1, clock.now_ms())
    assert early.scanned == 0  # the window excludes jobs outside it
    rep = await maintenance.reconcile_recent(deps, t0 - 1, clock.now_ms())
    assert rep.scanned == 2 and rep.added == 1
    got = {c.id for c in await jobs.claim(deps, "w", ["q"], 10)}
    assert got == {lost.submitted.id, kept.submitted.id}
    assert (await maintenance.reconcile_recent(deps, t0 - 1, clock.now_ms())).added == 0


async def test_bulk_copy_path_stores_what_the_insert_path_stores(deps: Deps,
                                                                  clock: FakeClock) -> None:
    """Batches of COPY_MIN_JOBS or more go in by binary COPY; smaller ones by INSERT_JOBS, which
    resolves the stored retry policy in SQL. Both must store identical rows and keep FIFO."""
    from jobline.shared.retry.policy import RetryPolicy
    from jobline.shared.retry.policy_store import put_retry_policy

    await put_retry_policy(deps, "pol", RetryPolicy(7, {"baseMs": 50, "factor": 3.0}, None))

    def variety(tag: str) -> list[JobSpec]:
        out = []
        for i in range(jobs.COPY_MIN_JOBS):
            kind = i % 6
            out.append(JobSpec(
                queue=f"q{kind % 2}", job_type="pol" if kind in (0, 3) else "t",
                payload={"i": i, "tag": tag, "nested": {"k": [1, "x"]}}, priority=i % 11,
                max_attempts=2 if kind == 3 else None,
                delay_ms=5_000 if kind == 4 else None,
                timeout_ms=1_500 if kind == 1 else None,
                backoff={"capMs": 999} if kind in (0, 2) else None,
                non_retryable=("ValueError", "KeyError") if kind == 5 else None,
                handler_max_attempts=9 if kind in (0, 1) else None))
        return out

    await jobs.submit_many(deps, [spec(queue="q0"), spec(queue="q1")])  # queues known: fast path
    by_copy = await jobs.submit_many(deps, variety("copy"))
    by_insert: list[jobs.SubmitResult] = []
    for chunk in range(0, jobs.COPY_MIN_JOBS, 64):
        by_insert += await jobs.submit_many(deps, variety("insert")[chunk:chunk + 64])
    cols = ("queue_name, job_type, payload - 'tag' AS payload, status, priority, max_attempts, "
            "timeout_ms, backoff, non_retryable, deps_remaining, attempts, lease_token, "
            "has_dependents, scheduled_for - created_at AS delay")

    async def rows(results: list[jobs.SubmitResult]) -> list[tuple[object, ...]]:
        ids = [r.submitted.id for r in results]
        got = {r["id"]: r for r in await deps.pool.fetch(
            f"SELECT id, seq, {cols} FROM jobs WHERE id = ANY($1)", ids)}
        seqs = [got[i]["seq"] for i in ids]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # FIFO = submit order
        assert seqs == [r.submitted.seq for r in results]
        return [tuple(got[i][c] for c in range(2, len(got[i]))) for i in ids]

    copied, inserted = await rows(by_copy), await rows(by_insert)
    assert copied == inserted
    first = copied[0]  # the stored policy's max_attempts beats the handler's; keys merged
    assert first[5] == 7 and first[7] == {"baseMs": 50, "factor": 3.0, "capMs": 999}
    assert copied[3][5] == 2 and copied[5][8] == ["ValueError", "KeyError"]
    assert [r.submitted.status for r in by_copy] == [r.submitted.status for r in by_insert]
    events = await deps.pool.fetchval(
        "SELECT count(*) FROM job_events, unnest(job_ids) AS j"
        " WHERE type = 'jobs.submitted' AND j = ANY($1)", [r.submitted.id for r in by_copy])
    assert events == jobs.COPY_MIN_JOBS  # the outbox trigger fires for COPY too



async def test_hot_path_plans_ignore_a_status_snapshot_of_a_drained_queue(deps: Deps) -> None:
    """ANALYZE taken while every job was completed (a drained queue that keeps its history)
    must not steer claims or completions onto a status index that walks the whole backlog:
    statements that address jobs by id reach them through the primary key only (sql.py)."""
    done = await jobs.submit_many(deps, [spec() for _ in range(3000)])
    await deps.pool.execute("UPDATE jobs SET status = 'completed' WHERE id = ANY($1)",
                            [r.submitted.id for r in done])
    await deps.pool.execute("ANALYZE jobs")
    assert await deps.pool.fetchval(  # the snapshot that misled the planner is in place
        "SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'jobs' "
        "AND attname = 'status' AND inherited") == "{completed}"
    backlog = await jobs.submit_many(deps, [spec() for _ in range(3000)])
    ids = [r.submitted.id for r in backlog[1000:1025]]
    now = to_dt(deps.clock.now_ms())
    n = len(ids)
    # the partition holding the rows (the empty ones may be scanned: there is nothing to walk)
    part = await deps.pool.fetchval("SELECT tableoid::regclass::text FROM jobs WHERE id = $1",
                                    ids[0])

    def leaves(node: dict[str, Any]) -> list[dict[str, Any]]:
        """The plan's accesses to tables: index scans and plain table scans."""
        leaf = "Index Name" in node or ("Relation Name" in node and "Plans" not in node)
        return [node] * leaf + [s for child in node.get("Plans", []) for s in leaves(child)]

    statements = {
        "claim": (sql.CLAIM_JOBS, ids, now, now, "w1"),
        "complete": (sql.COMPLETE_JOBS, ids, [1] * n, ["null"] * n, [now] * n, True,
                     [None] * n, 0),
        "extend": (sql.EXTEND_LEASES, ids, [1] * n, now),
    }
    for name, (stmt, *args) in statements.items():
        plan = await deps.pool.fetchval("EXPLAIN (FORMAT JSON) " + stmt, *args)
        found = [leaf for leaf in leaves(plan[0]["Plan"])  # the pool decodes json
                 if leaf.get("Relation Name", part) == part]
        assert found, name
        for leaf in found:  # no status index walk, no sequential scan
            assert leaf.get("Index Name", "").endswith("_pkey"), (name, leaf)
