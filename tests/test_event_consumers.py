"""What the relay folds (analytics rollups, alerts), its exactly-once effect across relay crashes
and re-publication, the relay's crash behaviour, and the audit/lag endpoints. Redis Streams bus
(the contract suite in test_events.py covers Kafka)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from jobline.analytics import alerts, rollups
from jobline.analytics.consumer import ConsumerHost, parse_kinds
from jobline.analytics.fold import make_fold
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome
from jobline.shared.events.bus import EventBus
from jobline.shared.events.buses import RedisStreamsBus, create_bus
from jobline.shared.events.outbox import (
    Event,
    NewEvent,
    apply_once,
    emit,
    maintain_partitions,
    relay_once,
    row_events,
)
from jobline.shared.events.outbox import lag as events_lag
from jobline.shared.platform.clock import FakeClock, to_dt
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.testing import wait_until


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(backoff_base_ms=1_000, backoff_cap_ms=1_000)


@pytest.fixture
async def bus(deps: Deps) -> AsyncIterator[EventBus]:
    b = await create_bus(deps.settings, claim_idle_ms=50)
    yield b
    await b.close()


async def run_jobs(deps: Deps, clock: FakeClock, plan: list[tuple[str, str, bool, int]]) -> None:
    """Submit, claim and finish jobs through the core: (queue, type, ok, duration_ms) each."""
    for queue, type_, ok, dur in plan:
        await jobs.submit(deps, JobSpec(queue, type_, {"token": "s3cr3t"}, max_attempts=1))
        clock.advance(5)
        (c,) = await jobs.claim(deps, "w", [queue], 1)
        clock.advance(dur)
        if ok:
            await jobs.complete(deps, [Outcome(c.id, c.token, True, None)])
        else:
            await jobs.fail(deps, [Outcome(c.id, c.token, False, error="boom password=x",
                                           error_type="Boom")], [c.attempt])


async def relay_all(deps: Deps, bus: EventBus, **kw: Any) -> int:
    """Relay everything, folding as ``jobline relay`` does."""
    fold = kw.pop("fold", make_fold(deps))
    total = 0
    while n := await relay_once(deps, bus, fold=fold, **kw):
        total += n
    return total


async def counts(deps: Deps, clock: FakeClock, queue: str | None = None) -> tuple[int, ...]:
    rows = await rollups.summary(deps, 0, clock.now_ms() + 60_000, queue=queue)
    return tuple(sum(r[c] for r in rows) for c in rollups.COLUMNS)


async def test_rollups_equal_a_direct_count_over_jobs(deps: Deps, bus: EventBus,
                                                      clock: FakeClock) -> None:
    start = clock.now_ms()
    plan = [("mail", "send", i % 4 != 0, 10 * (i + 1)) for i in range(12)]
    plan += [("img", "resize", i % 2 == 0, 1000 + i) for i in range(6)]
    await run_jobs(deps, clock, plan)
    clock.advance(61_000)
    await run_jobs(deps, clock, [("mail", "send", True, 3)])
    await relay_all(deps, bus)
    lo, hi = start // 60_000 * 60_000, clock.now_ms() // 60_000 * 60_000 + 60_000
    got = {(r["queue_name"], r["job_type"]): r for r in await rollups.summary(deps, lo, hi)}
    direct = await deps.pool.fetch(
        """SELECT queue_name, job_type, count(*) AS submitted,
                  count(*) FILTER (WHERE status = 'completed') AS completed,
                  count(*) FILTER (WHERE status = 'dead_letter') AS dead_letter,
                  coalesce(sum((extract(epoch FROM completed_at - started_at) * 1000)::bigint)
                      FILTER (WHERE status = 'completed'), 0) AS dur
             FROM jobs WHERE created_at >= $1 AND created_at < $2
            GROUP BY queue_name, job_type""", to_dt(lo), to_dt(hi))
    assert len(direct) == 2
    for r in direct:
        roll = got[(r["queue_name"], r["job_type"])]
        assert roll["submitted"] == r["submitted"]
        assert roll["completed"] == r["completed"]
        assert roll["dead_letter"] == r["dead_letter"] == roll["failed"]
        assert roll["duration_sum_ms"] == r["dur"]
    hist = await rollups.histogram(deps, "duration", lo, hi, queue="img")
    p50 = hist.percentile(50)  # 1000..1004 ms: within the sketch's 2% of the exact median
    assert hist.total == 3 and p50 is not None and abs(p50 - 1002) <= 0.02 * 1002
    mail = await rollups.histogram(deps, "duration", lo, hi, queue="mail")
    assert mail.total == 10


async def test_relay_crash_after_fold_before_commit_refolds_once(
        deps: Deps, bus: EventBus, clock: FakeClock) -> None:
    """Killed after the bus took the batch and the rollups were folded, before the commit: the
    rollups roll back with the cursor, the next pass re-publishes and folds them once."""
    await run_jobs(deps, clock, [("q", "t", True, 1)])

    async def crash() -> None:
        assert await deps.pool.fetchval("SELECT count(*) FROM job_rollups") == 0  # not committed
        raise RuntimeError("relay died after the bus accepted the batch")

    with pytest.raises(RuntimeError):
        await relay_all(deps, bus, after_publish=crash)
    assert (await events_lag(deps, bus, []))["outbox"]["pending"] == 3
    assert await counts(deps, clock) == (0,) * 7
    assert await relay_all(deps, bus) == 3  # published again
    assert await deps.redis.xlen(f"{deps.settings.redis_prefix}:events") == 6
    assert await counts(deps, clock) == (1, 1, 1, 0, 0, 0, 0)
    assert await relay_all(deps, bus) == 0
    assert await counts(deps, clock) == (1, 1, 1, 0, 0, 0, 0)
    assert await deps.pool.fetchval("SELECT count(*) FROM job_events") == 3  # the audit log


async def test_concurrent_relays_fold_each_event_once(deps: Deps, bus: EventBus,
                                                      clock: FakeClock) -> None:
    """Several relays (failover standbys) running at once: one publishes and folds at a time."""
    await run_jobs(deps, clock, [("q", "t", i % 3 != 0, 2) for i in range(30)])
    folds = [make_fold(deps) for _ in range(4)]

    async def one(fold: Any) -> int:
        total = 0
        for _ in range(20):
            total += await relay_once(deps, bus, limit=7, fold=fold)
        return total

    published = await asyncio.gather(*(one(f) for f in folds))
    rest = await relay_all(deps, bus)  # whatever the contended passes left
    # 100 job events (a dead-lettered job has four), and the alert the 33 % failure rate
    # fired (published in a later pass), each read from the outbox once
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM job_events WHERE type = 'alerts.fired'") == 1
    assert sum(published) + rest == 101
    assert await deps.redis.xlen(f"{deps.settings.redis_prefix}:events") == 101
    assert await counts(deps, clock) == (30, 30, 20, 10, 0, 10, 0)


async def test_rows_published_without_a_fold_are_folded_once_later(
        deps: Deps, bus: EventBus, clock: FakeClock) -> None:
    """A relay without a fold (or the analytics consumer's backlog on an upgrade): the folding
    relay folds what the bus got meanwhile, once, before it publishes anything new."""
    await run_jobs(deps, clock, [("q", "t", True, 1)] * 2)
    assert await relay_all(deps, bus, fold=None) == 6
    assert await counts(deps, clock) == (0,) * 7
    assert await relay_all(deps, bus) == 0  # nothing new to publish, the backlog is folded
    assert await counts(deps, clock) == (2, 2, 2, 0, 0, 0, 0)
    await run_jobs(deps, clock, [("q", "t", True, 1)])
    assert await relay_all(deps, bus) == 3
    assert await counts(deps, clock) == (3, 3, 3, 0, 0, 0, 0)
    assert await deps.redis.xlen(f"{deps.settings.redis_prefix}:events") == 9


async def test_the_fold_starts_from_the_analytics_consumers_watermark(
        deps: Deps, bus: EventBus, clock: FakeClock) -> None:
    """Upgrade: the analytics consumer had applied the first job's events (seq <= its
    watermark) of the six the relay had published; the fold counts the other three, once."""
    await run_jobs(deps, clock, [("q", "t", True, 1)] * 2)
    assert await relay_all(deps, bus, fold=None) == 6
    first = await deps.pool.fetchval(  # the first job's last event (run_jobs is sequential)
        "SELECT min(seq) FROM job_events WHERE type = 'jobs.completed'")
    await deps.pool.execute("INSERT INTO consumer_watermarks (consumer, part, seq) "
                            "VALUES ('analytics', '', $1)", first)
    # what the consumer had applied, as it left it in the rollups
    async with deps.pool.acquire() as conn, conn.transaction():
        await rollups.apply(conn, [e for r in await conn.fetch(
            "SELECT * FROM job_events WHERE seq <= $1 ORDER BY seq", first)
            for e in row_events(r)])
    assert await counts(deps, clock) == (1, 1, 1, 0, 0, 0, 0)
    await relay_all(deps, bus)
    assert await counts(deps, clock) == (2, 2, 2, 0, 0, 0, 0)


async def test_a_transaction_committing_a_lower_seq_late_is_not_skipped(
        deps: Deps, bus: EventBus, clock: FakeClock) -> None:
    """seq is taken at insert: a transaction can commit seq 1 after another committed seq 2.
    The relay's cursor must not pass seq 1 while its transaction is open."""
    c = await bus.consumer("watch", "w")
    slow = await deps.pool.acquire()
    try:
        tx = slow.transaction()
        await tx.start()
        await slow.execute(
            "INSERT INTO job_events (type, occurred_at, queue_name) VALUES ('queues.backlog', "
            "now(), 'slow')")
        await emit(deps, [NewEvent("queues.backlog", queue="fast")])
        assert await relay_once(deps, bus, settle_timeout_s=0.05) == 0  # slow is still open
        await tx.commit()
        assert await relay_all(deps, bus) == 2
        got = [d.event for d in await c.fetch(10, 1.0)]
        assert [e.queue for e in got] == ["slow", "fast"]  # seq order
        assert (await events_lag(deps, bus, []))["outbox"]["pending"] == 0
    finally:
        await deps.pool.release(slow)
        await c.close()


async def test_the_newest_open_transaction_is_not_skipped_either(
        deps: Deps, bus: EventBus, clock: FakeClock) -> None:
    """The open writer holds the newest transaction id of all (nothing committed after it took
    one). A snapshot's xmax is the latest *completed* id + 1, so that writer is above it and
    missing from the snapshot's xmin too: a bound taken from them alone was "settled" at once,
    the cursor passed the writer's seq and its row, committed a moment later, was never
    published (a drain lost ~0.2 % of its events that way)."""
    c = await bus.consumer("watch", "w")
    slow = await deps.pool.acquire()
    try:
        tx = slow.transaction()
        await tx.start()
        await slow.execute(
            "INSERT INTO job_events (type, occurred_at, queue_name) VALUES ('queues.backlog', "
            "now(), 'slow')")
        assert await relay_once(deps, bus, settle_timeout_s=0.05) == 0  # slow is still open
        await tx.commit()
        assert await relay_all(deps, bus) == 1
        got = [d.event for d in await c.fetch(10, 1.0)]
        assert [e.queue for e in got] == ["slow"]
    finally:
        await deps.pool.release(slow)
        await c.close()


async def test_relay_process_killed_then_restarted_still_publishes(
        deps: Deps, bus: EventBus, clock: FakeClock) -> None:
    """A real ``jobline relay`` SIGKILLed as soon as its first batch is on the bus (most often
    before its commit): nothing is lost, and the rollups it folds count every event once."""
    s = deps.settings
    env = dict(os.environ, DATABASE_URL=s.database_url or "", REDIS_URL=s.redis_url or "",
               JOBLINE_REDIS_PREFIX=s.redis_prefix, JOBLINE_HOME=str(s.home))

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "jobline", "relay"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    c = await bus.consumer("watch", "w")
    got: list[Event] = []

    async def received(n: int) -> bool:
        # The kill may land between publish and commit: duplicates are allowed, losses are not.
        batch = await c.fetch(100, 0.1)
        for d in batch:
            if d.event.id not in {e.id for e in got}:
                got.append(d.event)
        await c.ack(batch)
        return len(got) >= n

    async def relayed() -> bool:
        return (await events_lag(deps, bus, []))["outbox"]["pending"] == 0

    relay = start()
    try:
        await run_jobs(deps, clock, [("q", "t", True, 1)] * 20)
        await wait_until(lambda: received(3), timeout=20, message="first events")
        relay.send_signal(signal.SIGKILL)
        relay.wait()
        # committed while no relay is alive
        await run_jobs(deps, clock, [("q", "t", False, 1)])
        relay = start()
        await wait_until(lambda: received(64), timeout=20, message="events after restart")
        await wait_until(relayed, timeout=20, message="outbox relayed")
        assert len(got) == 64
        assert {e.type for e in got[60:]} == {"jobs.submitted", "jobs.started", "jobs.failed",
                                              "jobs.dead_letter"}
        assert all("password=x" not in (e.error or "") for e in got)
        # folded exactly once, whichever side of the relay's commit the kill landed on
        assert await counts(deps, clock) == (21, 21, 20, 1, 0, 1, 0)
    finally:
        relay.kill()
        relay.wait()
        await c.close()


async def test_a_flushed_redis_gets_the_retained_events_again(
        deps: Deps, bus: EventBus, clock: FakeClock) -> None:
    await run_jobs(deps, clock, [("q", "t", True, 1)])
    assert await relay_all(deps, bus) == 3
    assert await counts(deps, clock) == (1, 1, 1, 0, 0, 0, 0)
    assert isinstance(bus, RedisStreamsBus)
    assert bus.stream == f"{deps.settings.redis_prefix}:events"
    await deps.redis.delete(bus.stream, bus.marker)
    assert await relay_all(deps, bus) == 3
    assert await deps.redis.xlen(f"{deps.settings.redis_prefix}:events") == 3
    # the re-published events are not folded twice (the fold's watermark did not move back)
    assert await counts(deps, clock) == (1, 1, 1, 0, 0, 0, 0)


async def test_spike_rule_fires_on_a_jump_over_the_queue_baseline(deps: Deps) -> None:
    """The rule reads the rollups (folded first, same transaction); its cooldown is stored, so
    a fresh evaluation (a restarted relay) still honours it."""
    rule = alerts.SpikeRule(window_ms=5 * 60_000, baseline_ms=60 * 60_000, min_finished=20)
    t0 = 1_767_225_600_000

    async def feed(minute: int, ok: int, bad: int, queue: str = "mail") -> list[dict[str, Any]]:
        evs = [Event(uuid.uuid4(), "jobs.completed" if i < ok else "jobs.failed",
                     t0 + minute * 60_000 + i, queue=queue, job_type="t")
               for i in range(ok + bad)]
        async with deps.pool.acquire() as conn, conn.transaction():
            await rollups.apply(conn, evs)
            return await alerts.evaluate(deps, conn, evs, rule)

    for m in range(30):  # baseline: 5% failures
        assert await feed(m, 19, 1) == []
    (alert,) = await feed(30, 10, 90)  # 90% this minute: about 50% over the 5-minute window
    assert alert["queue"] == "mail" and alert["baselineRate"] < 0.1
    assert await feed(31, 10, 90) == []  # cooldown
    assert await feed(44, 10, 90) == []  # still (14 minutes later)
    assert len(await feed(45, 10, 90)) == 1  # 15 minutes: over
    # a queue that always fails half its jobs is not spiking (once its baseline exists)
    fired = [await feed(m, 10, 10, "flaky") for m in range(30)]
    assert len(fired[0]) == 1 and not any(fired[1:])
    rows = await deps.pool.fetch(
        "SELECT queue_name FROM job_events WHERE type = 'alerts.fired' ORDER BY seq")
    assert [r["queue_name"] for r in rows] == ["mail", "mail", "flaky"]


async def test_the_relay_fires_alerts_through_the_outbox_once(
        deps: Deps, bus: EventBus, clock: FakeClock) -> None:
    await run_jobs(deps, clock, [("pay", "charge", False, 1)] * 20)
    await relay_all(deps, bus)
    row = await deps.pool.fetchrow(
        "SELECT queue_name, data FROM job_events WHERE type = 'alerts.fired'")
    assert row is not None and row["queue_name"] == "pay"
    assert row["data"]["failureRate"] == 1.0
    # published like any event, once; more failures within the cooldown fire nothing
    fired = [d.event async for d in _drain(await bus.consumer("watch", "w"))
             if d.event.type == "alerts.fired"]
    assert len(fired) == 1
    await run_jobs(deps, clock, [("pay", "charge", False, 1)] * 5)
    await relay_all(deps, bus, fold=make_fold(deps))  # a fresh fold: a restarted relay
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM job_events WHERE type = 'alerts.fired'") == 1


async def _drain(c: Any) -> AsyncIterator[Any]:
    try:
        while batch := await c.fetch(100, 0.2):
            for d in batch:
                yield d
            await c.ack(batch)
    finally:
        await c.close()


async def test_audit_endpoint_filters_and_pages(deps: Deps, bus: EventBus, clock: FakeClock,
                                                http: Any) -> None:
    t0 = clock.now_ms()
    await run_jobs(deps, clock, [("q", "t", True, 1), ("q", "t", False, 1)])
    # no relay, no consumer: the audit log is the outbox, complete from the commit on
    job_id = await deps.pool.fetchval("SELECT id FROM jobs WHERE status = 'dead_letter'")
    r = await http.get("/api/v1/audit", params={"jobId": str(job_id)})
    assert r.status_code == 200
    types = [e["type"] for e in r.json()["events"]]
    assert sorted(types) == sorted(["jobs.submitted", "jobs.started", "jobs.failed",
                                    "jobs.dead_letter"])
    r = await http.get("/api/v1/audit", params={"type": "jobs.completed", "from": str(t0)})
    assert [e["type"] for e in r.json()["events"]] == ["jobs.completed"]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/api/v1/audit", params=params)).json()
        seen += [e["id"] for e in page["events"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    for params, field in [({"jobId": "nope"}, "jobId"), ({"type": "jobs.exploded"}, "type"),
                          ({"from": "yesterday"}, "from"), ({"limit": "0"}, "limit"),
                          ({"cursor": "!!"}, "cursor"), ({"color": "red"}, "color")]:
        r = await http.get("/api/v1/audit", params=params)
        # an unknown parameter is a 400 like on every route (issue 21), a bad value a 422
        assert r.status_code == (400 if field == "color" else 422), params
        assert r.json()["error"]["field"] == field


async def test_lag_endpoint_reports_outbox_and_groups(deps: Deps, bus: EventBus,
                                                      clock: FakeClock, http: Any) -> None:
    await run_jobs(deps, clock, [("q", "t", True, 1)])
    body = (await http.get("/api/v1/events/lag")).json()
    assert body["backend"] == "redis" and body["outbox"]["pending"] == 3
    await relay_all(deps, bus)
    body = (await http.get("/api/v1/events/lag")).json()
    assert body["outbox"]["pending"] == 0
    assert body["groups"] == []  # no consumer group of Jobline's own: the relay folds


async def test_worker_lifecycle_and_backlog_events(deps: Deps, bus: EventBus,
                                                   clock: FakeClock) -> None:
    from jobline.shared.events import worker_events
    from jobline.testing import drain
    from jobline.worker.registry import Registry

    reg = Registry()

    @reg.job("noop", queue="life")
    def noop(payload: dict[str, Any]) -> None:
        return None

    await jobs.submit(deps, JobSpec("life", "noop", {}, scheduled_for_ms=clock.now_ms() + 10**9))
    assert await worker_events.emit_backlog(deps) == 1
    await jobs.submit(deps, JobSpec("life", "noop", {}))
    await deps.pool.execute("UPDATE jobs SET status = 'cancelled' WHERE status = 'scheduled'")
    await drain(deps, reg, queues=["life"])
    # a worker that vanished without stopping: tracked, no heartbeat key
    await deps.redis.sadd(f"{deps.settings.redis_prefix}:workers:tracked", "ghost")
    assert await worker_events.sweep_lost_workers(deps) == ["ghost"]
    assert await worker_events.sweep_lost_workers(deps) == []
    rows = await deps.pool.fetch(
        "SELECT type, queue_name, data FROM job_events WHERE type NOT LIKE 'jobs.%' ORDER BY seq")
    assert [r["type"] for r in rows] == ["queues.backlog", "workers.started", "workers.stopped",
                                         "workers.heartbeat_lost"]
    assert rows[0]["data"]["delayed"] == 1 and rows[3]["data"]["workerId"] == "ghost"
    assert rows[1]["data"]["workerId"] == rows[2]["data"]["workerId"]





async def test_jobline_consumer_is_retired_and_idles_until_stopped() -> None:
    for kinds in [(None, None), ("analytics", None), (None, "audit,alerts")]:
        assert parse_kinds(*kinds) == []
    with pytest.raises(ValueError):
        parse_kinds("nope", None)
    host = ConsumerHost(parse_kinds(None, None))
    task = asyncio.create_task(host.run())
    await asyncio.sleep(0)
    assert not task.done()
    host.request_stop()
    await asyncio.wait_for(task, 15)


async def test_events_off_writes_no_outbox_rows(deps: Deps, clock: FakeClock) -> None:
    off = await connect(deps.settings.with_(events=False), clock, pool_size=2,
                        check_redis_policy=False)
    try:
        await run_jobs(off, clock, [("q", "t", True, 1), ("q", "t", False, 1)])
        await emit(off, [NewEvent("queues.backlog", queue="q")])
        assert await deps.pool.fetchval("SELECT count(*) FROM jobs") == 2
        assert await deps.pool.fetchval("SELECT count(*) FROM job_events") == 0
        # the same database with events on (another process's setting) still gets them
        await run_jobs(deps, clock, [("q", "t", True, 1)])
        assert await deps.pool.fetchval("SELECT count(*) FROM job_events") == 3
    finally:
        await off.close()


async def test_retention_drops_old_published_days_only(deps: Deps, bus: EventBus,
                                                       clock: FakeClock) -> None:
    day = 86_400_000
    clock.advance(-40 * day)  # events 40 days ago, in their own day's partition
    await deps.pool.execute("SELECT jobline_ensure_event_partitions($1, 1)",
                            to_dt(clock.now_ms()))
    await run_jobs(deps, clock, [("old", "t", True, 1)])
    clock.advance(40 * day)
    await run_jobs(deps, clock, [("new", "t", True, 1)])
    assert await maintain_partitions(deps) == 0  # unpublished: kept
    assert await deps.pool.fetchval("SELECT count(*) FROM job_events") == 6
    await relay_all(deps, bus)
    assert await maintain_partitions(deps) == 1
    assert {r["queue_name"] for r in await deps.pool.fetch(
        "SELECT queue_name FROM job_events")} == {"new"}


async def test_a_redelivered_statement_record_is_applied_once_and_whole(
        deps: Deps, bus: EventBus, clock: FakeClock) -> None:
    """apply_once: the 20 events of one record share its seq; all of them apply the first
    time, none when the record comes again, and the next record applies whole."""
    applied: list[Event] = []

    async def apply(conn: Any, evs: list[Event]) -> None:
        applied.extend(evs)

    c = await bus.consumer("ext", "c1")
    try:
        await jobs.submit_many(deps, [JobSpec("q", "t", {"i": i}) for i in range(20)])
        await relay_all(deps, bus)
        first = await c.fetch(100, 1.0)
        assert len(first) == 20 and len({d.token for d in first}) == 1  # one stream entry
        items = [(d.part, d.event) for d in first]
        assert len(await apply_once(deps, "ext", items, apply)) == 20
        assert await apply_once(deps, "ext", items + items, apply) == []  # redelivered
        await c.ack(first)
        await jobs.submit_many(deps, [JobSpec("q", "t", {"i": i}) for i in range(20)])
        await relay_all(deps, bus)
        second = [(d.part, d.event) for d in await c.fetch(100, 1.0)]
        # a copy of the same record within one call counts once
        assert len(await apply_once(deps, "ext", second + second, apply)) == 20
        assert len(applied) == 40 and len({e.id for e in applied}) == 40
    finally:
        await c.close()


async def test_audit_pages_through_statement_rows_and_finds_one_job_in_them(
        deps: Deps, clock: FakeClock, http: Any) -> None:
    subs = await jobs.submit_many(deps, [JobSpec("q", "t", {"i": i}) for i in range(25)])
    claimed = await jobs.claim(deps, "w", ["q"], 25)
    clock.advance(30)
    await jobs.complete(deps, [Outcome(j.id, j.token, True, None) for j in claimed])
    assert await deps.pool.fetchval("SELECT count(*) FROM job_events") == 3
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "7", **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/api/v1/audit", params=params)).json()
        assert len(page["events"]) <= 7
        seen += [e["id"] for e in page["events"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 75
    mine = subs[7].submitted.id
    r = (await http.get("/api/v1/audit", params={"jobId": str(mine)})).json()
    assert sorted(e["type"] for e in r["events"]) == [
        "jobs.completed", "jobs.started", "jobs.submitted"]
    assert all(e["jobId"] == str(mine) for e in r["events"])
    done = next(e for e in r["events"] if e["type"] == "jobs.completed")
    assert done["durationMs"] == 30



async def test_a_stopping_relay_publishes_what_committed_before_the_stop(
        deps: Deps, bus: EventBus, clock: FakeClock) -> None:
    """Passes are paced (JOBLINE_RELAY_INTERVAL_MS); a graceful stop does not leave what
    committed during the last interval unpublished."""
    from jobline.shared.events.outbox import Relay

    paced = dataclasses.replace(deps, settings=deps.settings.with_(relay_interval_ms=60_000))
    relay = Relay(paced, bus, fold=make_fold(paced))
    task = asyncio.create_task(relay.run())
    try:
        async def passed() -> bool:
            return relay.passes >= 1

        await wait_until(passed, message="the relay's first pass")
        await jobs.submit_many(deps, [JobSpec("q", "t", {"i": i}) for i in range(12)])
        # the next pass is a minute away
        assert (await events_lag(deps, bus, []))["outbox"]["pending"] == 12
    finally:
        relay.request_stop()
        await asyncio.wait_for(task, 30)
    assert (await events_lag(deps, bus, []))["outbox"]["pending"] == 0
    assert await counts(deps, clock) == (12, 0, 0, 0, 0, 0, 0)
