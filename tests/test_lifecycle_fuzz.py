"""A Hypothesis state machine over the job lifecycle on the real stores.

Random interleavings of submit / claim / complete / fail / cancel / retry_now / reap (with a
FakeClock jump) / promote / reconcile (sometimes after a FLUSHALL) must keep the invariants:
  * no job is lost: every submitted id exists in Postgres;
  * a job is recorded completed at most once in ``job_attempts``, and ``complete`` accepts at most
    one completion per job (stale tokens are fenced off);
  * attempts stay within 0..max_attempts;
  * the maintained queue counts equal a GROUP BY over jobs, folded or not;
  * every pending/scheduled/processing job has a dispatch entry after a reconcile, and after a
    FLUSHALL + reconcile Redis holds exactly what Postgres says (pending -> ready, scheduled ->
    delayed or ready, processing -> leases, anything else -> nowhere).

Runs against a private Valkey (so FLUSHALL is safe) and the test's own database, which is emptied
between examples. Bounded (fixed seed, few examples) to stay well under a minute in CI.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import hypothesis
import pytest
from hypothesis import HealthCheck
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from jobline.local import EmbeddedValkey
from jobline.shared.core import counts, jobs, maintenance, sql
from jobline.shared.core.models import ClaimedJob, JobSpec, Outcome
from jobline.shared.dispatch.redis_dispatch import Dispatch
from jobline.shared.platform.clock import FakeClock
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.shared.platform.errors import IllegalTransition

T = TypeVar("T")
QUEUES = ("qa", "qb")
DISPATCHABLE = {"pending", "scheduled", "processing"}
MAX_EXAMPLES = 120
STEPS = 40


@dataclasses.dataclass
class World:
    """What lives across examples: the thread's event loop, connections, the fake clock."""

    loop: asyncio.AbstractEventLoop
    base: Deps
    clock: FakeClock
    tables: list[str]
    prefixes: Iterator[int] = dataclasses.field(default_factory=lambda: itertools.count(1))
    examples: int = 0
    steps: int = 0
    flushes: int = 0
    fenced: int = 0
    completed: int = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)


class Lifecycle(RuleBasedStateMachine):
    world: World  # set on the class by the test

    def __init__(self) -> None:
        super().__init__()
        w = self.world
        w.examples += 1
        prefix = f"sm{next(w.prefixes)}"
        self.deps = dataclasses.replace(
            w.base, settings=w.base.settings.with_(redis_prefix=prefix),
            dispatch=Dispatch(w.base.redis, prefix), known_queues=set())
        self.submitted: dict[uuid.UUID, int] = {}  # id -> max_attempts
        self.held: list[ClaimedJob] = []  # leases handed out, current or stale
        self.accepted_completions: set[uuid.UUID] = set()
        self.workers = itertools.count(1)

    @initialize()
    def fresh_database(self) -> None:
        # one database for all examples: empty it (Redis gets a fresh prefix per example)
        self.world.run(self.deps.pool.execute(
            f"TRUNCATE {', '.join(self.world.tables)} CASCADE"))

    def teardown(self) -> None:
        self.world.run(self.deps.redis.flushall())

    # --- rules ---------------------------------------------------------------------------

    @rule(n=st.integers(1, 3), queue=st.sampled_from(QUEUES), max_attempts=st.integers(1, 3),
          delay=st.sampled_from([None, None, 2_000]), priority=st.integers(0, 10))
    def submit(self, n: int, queue: str, max_attempts: int, delay: int | None,
               priority: int) -> None:
        self.world.steps += 1
        specs = [JobSpec(queue=queue, job_type="t", payload={"i": i}, max_attempts=max_attempts,
                         delay_ms=delay, priority=priority) for i in range(n)]
        for r in self.world.run(jobs.submit_many(self.deps, specs)):
            self.submitted[r.submitted.id] = max_attempts

    @rule(n=st.integers(1, 4), queues=st.sampled_from([list(QUEUES), ["qa"], ["qb"]]))
    def claim(self, n: int, queues: list[str]) -> None:
        self.world.steps += 1
        got = self.world.run(jobs.claim(self.deps, f"w{next(self.workers)}", queues, n))
        for c in got:
            assert c.id in self.submitted
            assert 1 <= c.attempt <= self.submitted[c.id]
        self.held.extend(got)

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        self.world.steps += 1
        # mostly a recent lease (likely live), sometimes any (likely stale: must be fenced)
        c = data.draw(st.sampled_from(self.held[-3:]) | st.sampled_from(self.held))
        rep = self.world.run(jobs.complete(self.deps, [Outcome(c.id, c.token, ok=True)]))
        if c.id in rep.accepted:
            assert c.id not in self.accepted_completions, "a job was completed twice"
            self.accepted_completions.add(c.id)
            self.world.completed += 1
        else:
            assert c.id in rep.rejected
            self.world.fenced += 1

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data(), final=st.booleans(), burn=st.booleans())
    def fail(self, data: st.DataObject, final: bool, burn: bool) -> None:
        self.world.steps += 1
        c = data.draw(st.sampled_from(self.held))
        rep = self.world.run(jobs.fail(
            self.deps, [Outcome(c.id, c.token, ok=False, error="boom", error_type="error",
                                final=final, burn_attempt=burn)], [c.attempt], [c.backoff]))
        if c.id not in rep.accepted:
            self.world.fenced += 1

    @precondition(lambda self: bool(self.submitted))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        self.world.steps += 1
        job_id = data.draw(st.sampled_from(sorted(self.submitted)))
        try:
            self.world.run(jobs.cancel(self.deps, job_id))
        except IllegalTransition:
            status = self.world.run(self.deps.pool.fetchval(
                "SELECT status FROM jobs WHERE id = $1", job_id))
            assert status in ("completed", "dead_letter", "cancelled", "failed"), status

    @precondition(lambda self: bool(self.submitted))
    @rule(data=st.data())
    def retry_now(self, data: st.DataObject) -> None:
        self.world.steps += 1
        job_id = data.draw(st.sampled_from(sorted(self.submitted)))
        try:
            self.world.run(jobs.retry_now(self.deps, job_id))
        except IllegalTransition:
            status = self.world.run(self.deps.pool.fetchval(
                "SELECT status FROM jobs WHERE id = $1", job_id))
            assert status not in ("dead_letter", "failed"), status

    @rule(ms=st.sampled_from([500, 2_500, 31_000, 120_000]))
    def advance_and_reap(self, ms: int) -> None:
        """Time passes: due jobs are promoted, expired leases (lease 30 s) are reaped."""
        self.world.steps += 1
        self.world.clock.advance(ms)
        self.world.run(maintenance.reap_expired_leases(self.deps))
        self.world.run(maintenance.promote_due(self.deps))

    @rule(flush=st.booleans())
    def reconcile(self, flush: bool) -> None:
        self.world.steps += 1
        if flush:
            self.world.flushes += 1
            self.world.run(self.deps.redis.flushall())
        self.world.run(maintenance.reconcile(self.deps))
        self.check_dispatch(exact=flush)

    @rule()
    def fold_counts(self) -> None:
        self.world.steps += 1
        assert self.world.run(counts.fold(self.deps)) >= 0

    # --- invariants ----------------------------------------------------------------------

    def rows(self) -> list[Any]:
        return self.world.run(self.deps.pool.fetch(
            "SELECT id, queue_name, status, attempts, max_attempts, scheduled_for "
            "FROM jobs"))

    def check_dispatch(self, *, exact: bool) -> None:
        r = self.deps.redis
        now = self.world.clock.now_ms()
        for row in self.rows():
            k = self.deps.dispatch.keys(row["queue_name"])
            jid = str(row["id"])
            where = {name for name, key in (("ready", k.ready), ("delayed", k.delayed),
                                            ("leases", k.leases))
                     if self.world.run(r.zscore(key, jid)) is not None}
            status = row["status"]
            if status == "processing":
                assert "leases" in where, (row, where)
            elif status in DISPATCHABLE:
                assert where, f"{status} job {jid} has no dispatch entry after reconcile"
            if not exact:
                continue
            if status == "pending":
                assert where == {"ready"}, (row, where)
            elif status == "scheduled":
                due = int(row["scheduled_for"].timestamp() * 1000)
                assert where in ({"delayed"}, {"ready"}), (row, where)
                if due > now:
                    assert where == {"delayed"}, (row, where, now)
            elif status == "processing":
                assert where == {"leases"}, (row, where)
            else:
                assert where == set(), (row, where)

    @invariant()
    def nothing_lost_nothing_doubled(self) -> None:
        rows = self.rows()
        ids = {row["id"] for row in rows}
        assert set(self.submitted) <= ids, "a submitted job is missing from Postgres"
        for row in rows:
            assert 0 <= row["attempts"] <= row["max_attempts"], dict(row)
            if row["id"] in self.accepted_completions:
                assert row["status"] == "completed", dict(row)
        doubled = self.world.run(self.deps.pool.fetchval(
            "SELECT count(*) FROM (SELECT job_id FROM job_attempts WHERE outcome = 'completed' "
            "GROUP BY job_id HAVING count(*) > 1) d"))
        assert doubled == 0, "a job has two completed attempts"
        completed = self.world.run(self.deps.pool.fetchval(
            "SELECT count(*) FROM jobs WHERE status = 'completed'"))
        assert completed == len(self.accepted_completions)

    @invariant()
    def counts_match_the_rows(self) -> None:
        """The maintained queue counts (migration 0015) equal a GROUP BY over jobs."""
        scanned: dict[str, dict[str, int]] = {}
        for r in self.world.run(self.deps.pool.fetch(sql.QUEUE_COUNTS_SCAN)):
            scanned.setdefault(r["queue_name"], {})[r["status"]] = r["n"]
        assert self.world.run(counts.queue_counts(self.deps)) == scanned


@pytest.fixture(scope="module")
def private_valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    v = EmbeddedValkey(tmp_path_factory.mktemp("sm-valkey"), persist=False)
    try:
        yield v.start()
    finally:
        v.stop()


def run_machine(settings: Settings, redis_url: str, tmp: Path) -> World:
    loop = asyncio.new_event_loop()
    clock = FakeClock()
    try:
        base = loop.run_until_complete(connect(settings.with_(redis_url=redis_url), clock))
        tables = [r["tablename"] for r in loop.run_until_complete(base.pool.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT IN "
            "('schema_migrations', 'api_keys') AND tablename NOT LIKE '%\\_default' "
            "AND tablename NOT LIKE '%\\_p20%'"))]
        world = World(loop, base, clock, tables)
        Lifecycle.world = world
        try:
            run_state_machine_as_test(Lifecycle, settings=hypothesis.settings(
                max_examples=MAX_EXAMPLES, stateful_step_count=STEPS, deadline=None,
                database=None, derandomize=True, suppress_health_check=list(HealthCheck)))
        finally:
            loop.run_until_complete(base.close())
        return world
    finally:
        loop.close()


@pytest.mark.timeout(900)  # a fixed example count; a busy machine runs it slower
async def test_job_lifecycle_state_machine(settings: Settings, private_valkey: str,
                                           tmp_path: Path) -> None:
    world = await asyncio.to_thread(run_machine, settings, private_valkey, tmp_path)
    print(f"\nlifecycle state machine: {world.examples} examples, {world.steps} steps, "
          f"{world.completed} completions accepted, {world.fenced} stale outcomes fenced, "
          f"{world.flushes} FLUSHALL+reconcile")
    assert world.examples >= MAX_EXAMPLES // 2
    assert world.steps > world.examples * 5
    assert world.flushes > 0 and world.fenced > 0 and world.completed > 0
