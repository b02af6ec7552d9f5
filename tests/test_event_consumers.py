"""The consumers (analytics rollups, alerts), their exactly-once effect under redelivery, the
relay's crash behaviour, and the audit/lag endpoints. Redis Streams bus (the contract suite in
test_events.py covers Kafka)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from jobline.analytics import rollups
from jobline.analytics.alerts import SpikeDetector
from jobline.analytics.consumer import ConsumerHost, EventConsumer, parse_kinds
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome
from jobline.shared.events.bus import EventBus
from jobline.shared.events.buses import create_bus
from jobline.shared.events.outbox import Event, NewEvent, emit, maintain_partitions, relay_once
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


@pytest.fixture
async def consumer(deps: Deps, bus: EventBus) -> AsyncIterator[Any]:
    """Factory of EventConsumers on the test's bus, closed at teardown."""
    made: list[EventConsumer] = []

    def make(kind: str, **kw: Any) -> EventConsumer:
        c = EventConsumer(deps, bus, kind, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()


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


async def relay_all(deps: Deps, bus: EventBus) -> int:
    total = 0
    while n := await relay_once(deps, bus):
        total += n
    return total


async def consume_all(c: EventConsumer, expected: int) -> None:
    async def done() -> bool:
        await c.step(0.1)
        return c.applied >= expected

    await wait_until(done, message=f"{c.kind} applied {expected}")


async def test_rollups_equal_a_direct_count_over_jobs(deps: Deps, bus: EventBus,
                                                      clock: FakeClock, consumer: Any) -> None:
    start = clock.now_ms()
    plan = [("mail", "send", i % 4 != 0, 10 * (i + 1)) for i in range(12)]
    plan += [("img", "resize", i % 2 == 0, 1000 + i) for i in range(6)]
    await run_jobs(deps, clock, plan)
    clock.advance(61_000)
    await run_jobs(deps, clock, [("mail", "send", True, 3)])
    n = await relay_all(deps, bus)
    c = consumer("analytics")
    await consume_all(c, n)
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
    assert hist.total == 3 and hist.percentile(50) == 1024  # 1000..1004 ms -> [512, 1024)
    mail = await rollups.histogram(deps, "duration", lo, hi, queue="mail")
    assert mail.total == 10


async def test_a_consumer_killed_mid_batch_reprocesses_without_double_counting(
        deps: Deps, bus: EventBus, clock: FakeClock, consumer: Any) -> None:
    await run_jobs(deps, clock, [("q", "t", True, 7)] * 5)
    n = await relay_all(deps, bus)
    assert n == 15
    # Killed after its commit, before acknowledging: the effect is in, the events are pending.
    first = consumer("analytics", name="first", batch=10)
    assert await first.step(1.0, ack=False) == 10
    assert first.applied == 10
    await first.close()  # its connection (and the group lock) dies with the process
    # Killed before its commit: took over the 10 pending, applied nothing.
    second = consumer("analytics", name="second", batch=100)
    await second.start()
    assert second._consumer is not None
    assert len(await second._consumer.fetch(100, 1.0)) == 10
    await second.close()
    # The survivor re-reads all 15 from the dead consumers' pending entries.
    heir = consumer("analytics", name="heir")
    seen = 0

    async def drained() -> bool:
        nonlocal seen
        seen += await heir.step(0.1)
        return seen >= 15

    await wait_until(drained, message="redelivery")
    assert heir.applied == 5  # the 10 already applied were skipped by the group's watermark
    (row,) = await rollups.summary(deps, 0, clock.now_ms() + 60_000)
    assert (row["submitted"], row["started"], row["completed"]) == (5, 5, 5)
    (g,) = await bus.lag(["analytics"])
    assert g.pending == 0


async def test_relay_crash_after_publish_republishes_and_consumers_apply_once(
        deps: Deps, bus: EventBus, clock: FakeClock, consumer: Any) -> None:
    await run_jobs(deps, clock, [("q", "t", True, 1)])

    async def crash() -> None:
        raise RuntimeError("relay died after the bus accepted the batch")

    with pytest.raises(RuntimeError):
        await relay_once(deps, bus, after_publish=crash)
    assert (await events_lag(deps, bus, ["analytics"]))["outbox"]["pending"] == 3
    assert await relay_all(deps, bus) == 3  # published again
    assert await deps.redis.xlen(f"{deps.settings.redis_prefix}:events") == 6
    analytics = consumer("analytics")

    async def six_seen() -> bool:
        await analytics.step(0.1)
        (g,) = await bus.lag(["analytics"])
        return g.lag == 0 and g.pending == 0

    await wait_until(six_seen, message="analytics caught up")
    assert analytics.applied == 3
    (row,) = await rollups.summary(deps, 0, clock.now_ms() + 60_000)
    assert (row["submitted"], row["started"], row["completed"]) == (1, 1, 1)
    assert await deps.pool.fetchval("SELECT count(*) FROM job_events") == 3  # the audit log


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


async def test_relay_process_killed_then_restarted_still_publishes(
        deps: Deps, bus: EventBus, clock: FakeClock, consumer: Any) -> None:
    s = deps.settings
    env = dict(os.environ, DATABASE_URL=s.database_url or "", REDIS_URL=s.redis_url or "",
               JOBLINE_REDIS_PREFIX=s.redis_prefix, JOBLINE_HOME=str(s.home))

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "jobline", "relay"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    c = await bus.consumer("watch", "w")
    got: list[Event] = []

    async def received(n: int) -> bool:
        # The kill may land between publish and mark: duplicates are allowed, losses are not.
        batch = await c.fetch(100, 0.1)
        for d in batch:
            if d.event.id not in {e.id for e in got}:
                got.append(d.event)
        await c.ack(batch)
        return len(got) >= n

    relay = start()
    try:
        await run_jobs(deps, clock, [("q", "t", True, 1)])
        await wait_until(lambda: received(3), timeout=20, message="first events")
        relay.send_signal(signal.SIGKILL)
        relay.wait()
        # committed while no relay is alive
        await run_jobs(deps, clock, [("q", "t", False, 1)])
        relay = start()
        await wait_until(lambda: received(7), timeout=20, message="events after restart")
        second = [e.type for e in got if e.error_type == "Boom" or e.type == "jobs.submitted"]
        assert len(got) == 7 and second.count("jobs.submitted") == 2
        assert {e.type for e in got[3:]} == {"jobs.submitted", "jobs.started", "jobs.failed",
                                             "jobs.dead_letter"}
        assert all("password=x" not in (e.error or "") for e in got)
    finally:
        relay.kill()
        relay.wait()
        await c.close()


async def test_a_flushed_redis_gets_the_retained_events_again(
        deps: Deps, bus: EventBus, clock: FakeClock, consumer: Any) -> None:
    await run_jobs(deps, clock, [("q", "t", True, 1)])
    assert await relay_all(deps, bus) == 3
    analytics = consumer("analytics")
    await consume_all(analytics, 3)
    await analytics.close()
    await deps.redis.delete(f"{deps.settings.redis_prefix}:events",
                            f"{deps.settings.redis_prefix}:events:alive")
    assert await relay_all(deps, bus) == 3
    assert await deps.redis.xlen(f"{deps.settings.redis_prefix}:events") == 3
    # the replayed events are not counted twice
    again = consumer("analytics")

    async def replay_seen() -> bool:
        await again.step(0.1)
        (g,) = await bus.lag(["analytics"])
        return g.lag == 0 and g.pending == 0

    await wait_until(replay_seen, message="replay consumed")
    assert again.applied == 0
    (row,) = await rollups.summary(deps, 0, clock.now_ms() + 60_000)
    assert (row["submitted"], row["started"], row["completed"]) == (1, 1, 1)


def test_spike_detector_fires_on_a_jump_over_the_queue_baseline() -> None:
    d = SpikeDetector(window_ms=5 * 60_000, baseline_ms=60 * 60_000, min_finished=20)
    t0 = 1_767_225_600_000

    def feed(minute: int, ok: int, bad: int, queue: str = "mail") -> dict[str, Any] | None:
        for i in range(ok + bad):
            d.observe(Event(uuid.uuid4(), "jobs.completed" if i < ok else "jobs.failed",
                            t0 + minute * 60_000 + i, queue=queue))
        return d.check(queue)

    for m in range(30):  # baseline: 5% failures
        assert feed(m, 19, 1) is None
    alert = feed(30, 10, 90)  # 90% this minute: about 50% over the 5-minute window
    assert alert is not None and alert["queue"] == "mail" and alert["baselineRate"] < 0.1
    assert feed(31, 10, 90) is None  # cooldown
    for m in range(30):  # a queue that always fails half its jobs is not spiking
        assert feed(m, 10, 10, "flaky") is None


async def test_alerts_consumer_emits_alerts_fired_through_the_outbox(
        deps: Deps, bus: EventBus, clock: FakeClock, consumer: Any) -> None:
    await run_jobs(deps, clock, [("pay", "charge", False, 1)] * 20)
    n = await relay_all(deps, bus)
    c = consumer("alerts")
    await consume_all(c, n)
    row = await deps.pool.fetchrow(
        "SELECT queue_name, data FROM job_events WHERE type = 'alerts.fired'")
    assert row is not None and row["queue_name"] == "pay"
    assert row["data"]["failureRate"] == 1.0


async def test_audit_endpoint_filters_and_pages(deps: Deps, bus: EventBus, clock: FakeClock,
                                                http: Any, consumer: Any) -> None:
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
                                                      clock: FakeClock, http: Any, consumer: Any) -> None:
    await run_jobs(deps, clock, [("q", "t", True, 1)])
    body = (await http.get("/api/v1/events/lag")).json()
    assert body["backend"] == "redis" and body["outbox"]["pending"] == 3
    await relay_all(deps, bus)
    body = (await http.get("/api/v1/events/lag")).json()
    assert body["outbox"]["pending"] == 0
    assert {g["group"]: g["lag"] for g in body["groups"]} == {"analytics": 3, "alerts": 3}


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


async def test_a_second_consumer_of_a_group_waits_until_the_first_is_gone(
        deps: Deps, bus: EventBus, clock: FakeClock, consumer: Any) -> None:
    """The watermark needs one consumer per group at a time: a second one is a standby."""
    await run_jobs(deps, clock, [("q", "t", True, 1)])
    await relay_all(deps, bus)
    first = consumer("analytics", name="first")
    await first.start()
    standby = consumer("analytics", name="standby")
    waiting = asyncio.create_task(standby.start())

    async def standby_waits() -> bool:
        return bool(await deps.pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))

    await wait_until(standby_waits, message="the standby waits for the group lock")
    assert not waiting.done()
    await first.close()
    await asyncio.wait_for(waiting, 15)
    await consume_all(standby, 3)
    assert standby.applied == 3


async def test_one_process_hosts_every_group(deps: Deps, bus: EventBus, clock: FakeClock) -> None:
    assert parse_kinds(None, None) == ["analytics", "alerts"]
    assert parse_kinds(None, "audit,alerts") == ["alerts"]  # audit needs no consumer any more
    assert parse_kinds("analytics", None) == ["analytics"]
    with pytest.raises(ValueError):
        parse_kinds("nope", None)
    await run_jobs(deps, clock, [("pay", "charge", False, 1)] * 20)
    n = await relay_all(deps, bus)
    host = ConsumerHost(deps, bus)
    task = asyncio.create_task(host.run())
    try:
        async def both_applied() -> bool:
            return all(c.applied >= n for c in host.consumers)

        await wait_until(both_applied, message="both groups applied everything")
        assert await deps.pool.fetchval(
            "SELECT count(*) FROM job_events WHERE type = 'alerts.fired'") == 1
        (row,) = await rollups.summary(deps, 0, clock.now_ms() + 60_000)
        assert row["dead_letter"] == 20
    finally:
        host.request_stop()
        await asyncio.wait_for(task, 15)
        await host.close()


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


async def test_a_standby_consumer_stops_on_request(deps: Deps, bus: EventBus,
                                                   consumer: Any) -> None:
    first = consumer("alerts", name="first")
    await first.start()
    standby = consumer("alerts", name="standby")
    task = asyncio.create_task(standby.run())

    async def standby_waits() -> bool:
        return bool(await deps.pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))

    await wait_until(standby_waits, message="the standby waits for the group lock")
    standby.request_stop()
    await asyncio.wait_for(task, 15)  # not stuck in pg_advisory_lock
    assert standby._consumer is None
    assert not await standby_waits()
