"""Rollups (issue 16): the relay's live fold and ``jobline analytics rebuild`` agree row for row,
in every grain and family, on a workload run through the real engine and relay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from jobline.analytics import rebuild as rebuild_mod
from jobline.analytics import rollups
from jobline.analytics.fold import make_fold
from jobline.analytics.rollups import GRAINS
from jobline.shared.core import jobs, maintenance
from jobline.shared.core.models import ClaimedJob, JobSpec, Outcome
from jobline.shared.events.bus import EventBus
from jobline.shared.events.buses import create_bus
from jobline.shared.events.outbox import relay_once
from jobline.shared.platform.clock import FakeClock, from_dt, to_dt
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps

TABLES = [t + suffix for _, _, suffix, _ in GRAINS
          for t in ("job_rollups", "job_rollup_histograms", "job_rollup_errors",
                    "job_rollup_attempts")]

START = 1_767_308_400_000  # 2026-01-01T23:00:00Z: the workload crosses an hour and a day


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    # retries are due within a second; leases expire after 30 s
    return settings.with_(backoff_base_ms=1_000, backoff_cap_ms=1_000, lease_ms=30_000)


@pytest.fixture
async def bus(deps: Deps) -> AsyncIterator[EventBus]:
    b = await create_bus(deps.settings, claim_idle_ms=50)
    yield b
    await b.close()


async def relay_all(deps: Deps, bus: EventBus, limit: int = 500) -> None:
    fold = make_fold(deps)
    while await relay_once(deps, bus, fold=fold, limit=limit):
        pass


async def snapshot(deps: Deps) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for t in TABLES:
        rows = await deps.pool.fetch(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4, 5")
        out[t] = [tuple(r.values()) for r in rows]
    return out


async def claim_all(deps: Deps, clock: FakeClock, queue: str) -> list[ClaimedJob]:
    await maintenance.promote_due(deps)
    return await jobs.claim(deps, "w1", [queue], 100)


def fail(c: ClaimedJob, clock: FakeClock, etype: str | None, **kw: Any) -> Outcome:
    return Outcome(c.id, c.token, False, error=f"{etype} happened", error_type=etype,
                   finished_ms=clock.now_ms(), **kw)


async def workload(deps: Deps, clock: FakeClock, bus: EventBus, limit: int = 500) -> None:
    """Successes, retries with different error types, timeouts, dead letters, expired leases,
    releases and snoozes, cancellations (waiting and running), a manual retry of a dead
    letter, and a job still running at the end: over ~90 minutes, across an hour and a day."""
    for rnd in range(3):
        specs = [JobSpec("mail", "send", {"i": i}, max_attempts=3) for i in range(8)]
        specs += [JobSpec("img", "resize", {"i": i}, max_attempts=2) for i in range(5)]
        specs.append(JobSpec("img", "resize", {"late": 1}, delay_ms=90_000))
        specs.append(JobSpec("mail", "send", {"cancel": 1}, delay_ms=3_600_000))
        subs = await jobs.submit_many(deps, specs)
        clock.advance(1_500)
        mail = await claim_all(deps, clock, "mail")
        img = await claim_all(deps, clock, "img")
        assert len(mail) == 8 and len(img) == 5
        clock.advance(200 + 700 * rnd)
        await jobs.complete(deps, [Outcome(c.id, c.token, True, {"ok": 1},
                                           finished_ms=clock.now_ms()) for c in mail[:3]])
        await jobs.fail(deps, [fail(mail[3], clock, "SMTPError"),
                               fail(mail[4], clock, "timeout"),
                               fail(mail[5], clock, "RateLimited", retry_after_ms=500,
                                    burn_attempt=False),
                               fail(mail[6], clock, None),
                               fail(mail[7], clock, "Fatal", final=True)],
                        [c.attempt for c in mail[3:8]])
        await jobs.fail(deps, [fail(img[0], clock, "OOM"), fail(img[1], clock, "OOM"),
                               fail(img[2], clock, "cancelled", cancelled=True)],
                        [c.attempt for c in img[:3]])
        await jobs.release(deps, [(img[3].id, img[3].token)])
        # img[4] is left to its lease: reaped below as lease_expired
        await jobs.cancel(deps, subs[-1].submitted.id)  # the far-future one, never started
        clock.advance(40_000)
        await maintenance.reap_expired_leases(deps)
        await relay_all(deps, bus, limit)  # fold in several passes, as the live relay does
        # the retries: a second and third round of attempts, minutes later
        for k in range(2):
            clock.advance(61_000 + 13_000 * k)
            again = await claim_all(deps, clock, "mail") + await claim_all(deps, clock, "img")
            assert again
            clock.advance(900 * (k + 1))
            ok = [c for i, c in enumerate(again) if (i + k) % 3 != 0]
            bad = [c for i, c in enumerate(again) if (i + k) % 3 == 0]
            await jobs.complete(deps, [Outcome(c.id, c.token, True, None,
                                               finished_ms=clock.now_ms()) for c in ok])
            await jobs.fail(deps, [fail(c, clock, ("IOError", "timeout")[k]) for c in bad],
                            [c.attempt for c in bad])
        clock.advance(20 * 60_000)
        await relay_all(deps, bus, limit)
    # a dead letter retried by hand, then completed
    (dead,) = [r["id"] for r in await deps.pool.fetch(
        "SELECT id FROM jobs WHERE status = 'dead_letter' ORDER BY id LIMIT 1")]
    await jobs.retry_now(deps, dead)
    clock.advance(2_000)
    got = [c for c in await claim_all(deps, clock, "mail") + await claim_all(deps, clock, "img")]
    clock.advance(333)
    await jobs.complete(deps, [Outcome(c.id, c.token, True, None, finished_ms=clock.now_ms())
                               for c in got if c.id == dead])
    # one still running at the end
    await jobs.submit(deps, JobSpec("mail", "send", {"last": 1}))
    clock.advance(10)
    assert await claim_all(deps, clock, "mail")
    await relay_all(deps, bus, limit)


async def test_rebuild_equals_the_live_fold_row_for_row(deps: Deps, bus: EventBus,
                                                        clock: FakeClock) -> None:
    await workload(deps, clock, bus)
    live = await snapshot(deps)
    # the workload exercised every family and grain
    assert all(live[t] for t in TABLES), [t for t in TABLES if not live[t]]
    (tot,) = await deps.pool.fetch(
        "SELECT sum(submitted) s, sum(started) st, sum(completed) c, sum(failed) f, "
        "sum(retries) r, sum(dead_letter) d, sum(cancelled) x, sum(e2e_sum_ms) e "
        "FROM job_rollups_day")
    assert tot["s"] == 3 * 15 + 1 and tot["c"] > 0 and tot["f"] > 0 and tot["r"] > 0
    assert tot["d"] > 0 and tot["x"] >= 6 and tot["e"] > 0 and tot["st"] > tot["c"]
    errors = {r[3] for r in live["job_rollup_errors_day"]}
    assert {"SMTPError", "timeout", "OOM", "IOError", "lease_expired", "Fatal"} <= errors
    assert {r[3] for r in live["job_rollup_attempts"]} >= {1, 2, 3}
    assert {r[3] for r in live["job_rollup_histograms"]} == {"duration", "wait", "e2e",
                                                            "failed"}
    assert len({r[0] for r in live["job_rollups_day"]}) == 2  # crossed midnight

    # wipe the rollups, rebuild from the raw rows over the same range
    for t in TABLES:
        await deps.pool.execute(f"DELETE FROM {t}")
    rep = await rebuild_mod.rebuild(deps, START, clock.now_ms())
    assert rep["rows"]["job_rollups"] == len(live["job_rollups"])
    rebuilt = await snapshot(deps)
    for t in TABLES:
        assert rebuilt[t] == live[t], t

    # a second rebuild replaces (delete then insert), never adds
    await rebuild_mod.rebuild(deps, START + 3_600_000, START + 3_600_001)
    assert await snapshot(deps) == live

    # a bulk rebuild (the seed's: indexes dropped, rows inserted, indexes built again, in one
    # transaction) writes the same rows and leaves the same indexes and primary keys
    async def indexes() -> list[tuple[str, str, str | None]]:
        rows = await deps.pool.fetch(
            "SELECT i.indrelid::regclass::text AS t, pg_get_indexdef(i.indexrelid) AS d,"
            " c.conname FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid"
            " WHERE i.indrelid = ANY($1::regclass[]) ORDER BY 1, 2", list(TABLES))
        return [(r["t"], r["d"], r["conname"]) for r in rows]

    before = await indexes()
    assert len(before) == len(TABLES) + 2  # every primary key, two metric indexes
    for t in TABLES:
        await deps.pool.execute(f"DELETE FROM {t}")
    rep = await rebuild_mod.rebuild(deps, START, clock.now_ms(), bulk=True)
    assert rep["phases"]["build_indexes"] >= 0
    assert await snapshot(deps) == live
    assert await indexes() == before
    # a transaction per unit of tables (several connections) only from the seed's parts
    with pytest.raises(ValueError, match="several connections"):
        await rebuild_mod.rebuild(deps, START, clock.now_ms(), bulk=True, connections=2)
    # the rebuilds' working tables (unlogged, so parallel workers can read them) are gone
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM pg_class WHERE relname LIKE 'rb\\_%'") == 0


async def coarse_minus_minutes(deps: Deps) -> list[str]:
    """The compaction invariant: every hour/day row is the sum of its minute rows before the
    watermark. Returns the tables where it does not hold."""
    bad = []
    for table, keys, vals in rollups._FAMILIES:
        k = ", ".join(n for n, _ in keys)
        sums = ", ".join(f"sum({v})::bigint" for v in vals)
        for grain, _, suffix, _ in GRAINS[1:]:
            a = (f"(SELECT date_trunc('{grain}', minute, 'UTC'), {k}, {sums} FROM {table} "
                 f"WHERE minute < {rollups.WATERMARK} GROUP BY 1, {k})")
            b = f"(SELECT at, {k}, {', '.join(vals)} FROM {table}{suffix})"
            if (await deps.pool.fetch(f"{a} EXCEPT ALL {b}")
                    or await deps.pool.fetch(f"{b} EXCEPT ALL {a}")):
                bad.append(table + suffix)
    return bad


async def test_compaction_keeps_every_grain_exact(deps: Deps, bus: EventBus,
                                                  clock: FakeClock) -> None:
    """The live fold writes minute rows and compacts closed minutes into the hour/day rows once
    (migration 0030). With the watermark at the workload's start, the fold compacts as the clock
    moves, and a relay pass of a few rows folds events of minutes already compacted (the late
    path: straight into every grain). Throughout, hour/day rows are exactly the minutes before
    the watermark; the analytics reads see every event either way; compacted to the end, the
    rows equal a rebuild's, row for row."""
    from jobline.analytics import query as aq

    await deps.pool.execute("UPDATE rollup_watermark SET compacted_through = $1",
                            to_dt(START))
    await workload(deps, clock, bus, limit=3)
    w = from_dt(await deps.pool.fetchval(rollups.WATERMARK))
    assert START < w <= clock.now_ms() - rollups.GRACE_MS
    assert await coarse_minus_minutes(deps) == []
    s = aq.scope(clock.now_ms(), START, clock.now_ms() + 60_000)
    before = await aq.summary(deps, s)
    (truth,) = await deps.pool.fetch(
        "SELECT sum(completed) c, sum(failed) f FROM job_rollups")
    assert before["succeeded"]["value"] == truth["c"] > 0
    # the minutes still open: nothing of them in the hour/day rows yet
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM job_rollups WHERE minute >= $1", to_dt(w)) > 0

    assert await rollups.compact_now(deps.pool, clock.now_ms() + 60_000) is not None
    assert await rollups.compact_now(deps.pool, clock.now_ms() + 60_000) is None  # done already
    assert await coarse_minus_minutes(deps) == []
    assert await aq.summary(deps, s) == before
    live = await snapshot(deps)
    for t in TABLES:
        await deps.pool.execute(f"DELETE FROM {t}")
    await rebuild_mod.rebuild(deps, START, clock.now_ms())
    rebuilt = await snapshot(deps)
    for t in TABLES:
        assert rebuilt[t] == live[t], t


async def test_rebuild_writes_hour_and_day_rows_only_before_the_watermark(
        deps: Deps, bus: EventBus, clock: FakeClock) -> None:
    """A rebuild over minutes not compacted yet leaves them to the compaction (else they would
    be counted twice in the hour/day rows)."""
    await deps.pool.execute("UPDATE rollup_watermark SET compacted_through = $1",
                            to_dt(START))
    await jobs.submit(deps, JobSpec("mail", "send", {}))
    clock.advance(5)
    (c,) = await claim_all(deps, clock, "mail")
    clock.advance(120)
    await jobs.complete(deps, [Outcome(c.id, c.token, True, None, finished_ms=clock.now_ms())])
    await relay_all(deps, bus)  # the clock is within the grace: nothing compacted
    assert from_dt(await deps.pool.fetchval(rollups.WATERMARK)) == START
    await rebuild_mod.rebuild(deps, START, clock.now_ms())
    assert await deps.pool.fetchval("SELECT count(*) FROM job_rollups_hour") == 0
    assert await deps.pool.fetchval("SELECT sum(completed) FROM job_rollups") == 1
    await rollups.compact_now(deps.pool, clock.now_ms() + 60_000)
    assert await deps.pool.fetchval("SELECT sum(completed) FROM job_rollups_day") == 1
    assert await coarse_minus_minutes(deps) == []


async def test_rebuild_keeps_minutes_not_compacted_even_past_the_minute_retention(
        deps: Deps, bus: EventBus, clock: FakeClock) -> None:
    """A watermark left behind (no relay ran to compact): the minutes after it are read from
    minute rows, so a rebuild writes them even when they are older than the minute retention."""
    from jobline.analytics import query as aq

    await deps.pool.execute("UPDATE rollup_watermark SET compacted_through = $1",
                            to_dt(START))
    await jobs.submit(deps, JobSpec("mail", "send", {}))
    clock.advance(5)
    (c,) = await claim_all(deps, clock, "mail")
    await jobs.complete(deps, [Outcome(c.id, c.token, True, None, finished_ms=clock.now_ms())])
    clock.advance(9 * 86_400_000)  # past the 7-day minute retention
    await rebuild_mod.rebuild(deps, START, START + 60_000)
    assert await deps.pool.fetchval("SELECT sum(completed) FROM job_rollups") == 1
    assert await deps.pool.fetchval("SELECT count(*) FROM job_rollups_day") == 0
    s = aq.scope(clock.now_ms(), START - 86_400_000, START + 86_400_000)
    assert (await aq.summary(deps, s))["succeeded"]["value"] == 1


async def test_rebuild_detects_drift(deps: Deps, bus: EventBus, clock: FakeClock) -> None:
    """The comparison has teeth: a rollup row the raw rows do not support is replaced."""
    await jobs.submit(deps, JobSpec("mail", "send", {}))
    clock.advance(5)
    (c,) = await claim_all(deps, clock, "mail")
    clock.advance(120)
    await jobs.complete(deps, [Outcome(c.id, c.token, True, None, finished_ms=clock.now_ms())])
    await relay_all(deps, bus)
    live = await snapshot(deps)
    await deps.pool.execute("UPDATE job_rollups_hour SET completed = completed + 1")
    assert await snapshot(deps) != live
    await rebuild_mod.rebuild(deps, START, clock.now_ms())
    assert await snapshot(deps) == live


async def test_rebuild_vacuums_and_analyzes_what_it_wrote(deps: Deps, clock: FakeClock) -> None:
    """The reads after a rebuild need statistics and a visibility map (index-only scans): the
    rebuild vacuums and analyzes every table it wrote, and only when asked to."""
    await jobs.submit(deps, JobSpec("mail", "send", {}))
    clock.advance(5)
    (c,) = await claim_all(deps, clock, "mail")
    await jobs.complete(deps, [Outcome(c.id, c.token, True, None, finished_ms=clock.now_ms())])

    async def counts() -> dict[str, tuple[int, int]]:
        rows = await deps.pool.fetch(
            "SELECT relname, vacuum_count, analyze_count FROM pg_stat_user_tables "
            "WHERE relname LIKE 'job_rollup%'")
        return {r["relname"]: (r["vacuum_count"], r["analyze_count"]) for r in rows}

    before = await counts()
    rep = await rebuild_mod.rebuild(deps, START, clock.now_ms(), vacuum=False)
    assert await counts() == before and "vacuum" not in rep["phases"]
    rep = await rebuild_mod.rebuild(deps, START, clock.now_ms())
    after = await counts()
    assert set(rep["rows"]) == set(TABLES) and rep["phases"]["vacuum"] >= 0
    for t in TABLES:
        assert after[t][0] == before[t][0] + 1 and after[t][1] == before[t][1] + 1, t


async def test_cli_rebuild_writes_no_minute_rows_older_than_minute_retention(
        deps: Deps, bus: EventBus, clock: FakeClock, settings: Settings,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``jobline analytics rebuild`` (a real clock: the FakeClock's January is months ago):
    hour and day rows as the live fold wrote them, no minute rows past
    JOBLINE_ROLLUP_MINUTE_DAYS."""
    import asyncio

    import orjson

    from jobline.cli import main

    for k, v in (("DATABASE_URL", settings.database_url), ("REDIS_URL", settings.redis_url),
                 ("JOBLINE_REDIS_PREFIX", settings.redis_prefix),
                 ("JOBLINE_HOME", str(settings.home))):
        monkeypatch.setenv(k, str(v))
    await jobs.submit(deps, JobSpec("mail", "send", {}))
    clock.advance(5)
    (c,) = await claim_all(deps, clock, "mail")
    clock.advance(70_000)
    await jobs.fail(deps, [fail(c, clock, "SMTPError")], [c.attempt])
    await relay_all(deps, bus)
    live = await snapshot(deps)
    assert live["job_rollups"] and live["job_rollup_errors_hour"]
    for t in TABLES:
        await deps.pool.execute(f"DELETE FROM {t}")
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["analytics", "rebuild", "--from",
                                          "2026-01-01T23:00:00Z", "--to", "2026-01-02", "--json"])
    assert code == 0
    rep = orjson.loads(capsys.readouterr().out)
    assert rep["from"] == "2026-01-01T00:00:00Z" and rep["to"] == "2026-01-02T00:00:00Z"
    got = await snapshot(deps)
    for t in TABLES:
        assert got[t] == ([] if t in TABLES[:4] else live[t]), t


async def test_0023_derives_hour_and_day_rows_from_the_minute_history(
        empty_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An install as of 0022 holds minute rollups only; 0023 sums them into hour and day rows
    (so the all-time Prometheus totals, now read from the day grain, keep their history)."""
    import asyncpg

    from jobline.shared.platform import migrate as migrate_mod

    current = migrate_mod.available()
    monkeypatch.setattr(migrate_mod, "available",
                        lambda: [m for m in current if m.version <= "0022"])
    await migrate_mod.migrate(empty_database)
    conn = await asyncpg.connect(empty_database)
    try:
        await conn.execute("""
            INSERT INTO job_rollups (minute, queue_name, job_type, completed, duration_sum_ms)
            VALUES ('2026-01-01T10:01Z', 'q', 't', 2, 30), ('2026-01-01T10:59Z', 'q', 't', 1, 5),
                   ('2026-01-01T11:00Z', 'q', 't', 4, 1)""")
        await conn.execute("""
            INSERT INTO job_rollup_histograms VALUES ('2026-01-01T10:01Z', 'q', 't', 'duration',
                                                      7, 2), ('2026-01-01T11:00Z', 'q', 't',
                                                      'duration', 7, 4)""")
        monkeypatch.setattr(migrate_mod, "available", lambda: current)
        assert "0023" in await migrate_mod.migrate(empty_database)
        hours = await conn.fetch("SELECT extract(hour FROM at AT TIME ZONE 'UTC') AS h, "
                                 "completed, duration_sum_ms FROM job_rollups_hour ORDER BY at")
        assert [tuple(r.values()) for r in hours] == [(10, 3, 35), (11, 4, 1)]
        assert await conn.fetchval("SELECT completed FROM job_rollups_day") == 7
        assert await conn.fetchval("SELECT n FROM job_rollup_histograms_day") == 6
    finally:
        await conn.close()


async def test_a_rebuild_statement_may_outlast_the_pools_command_timeout(
        deps: Deps, clock: FakeClock) -> None:
    """A rebuild over a month of a large seed runs statements for minutes: the pool's client-side
    command timeout (60 s, for interactive work) must not cancel them (the seed's rollups step
    died on it at 1M jobs under load). Here the pool's timeout is 1 s and the rebuild's lock
    wait is held 1.5 s by a compaction."""
    import asyncio
    import dataclasses

    import asyncpg

    from jobline.testing import wait_until

    await jobs.submit(deps, JobSpec("mail", "send", {}))
    pool = await asyncpg.create_pool(deps.settings.database_url, min_size=1, max_size=2,
                                     command_timeout=1.0)
    assert pool is not None
    holder = await asyncpg.connect(deps.settings.database_url)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT pg_advisory_xact_lock($1)", rollups.COMPACT_LOCK_KEY)
        task = asyncio.create_task(rebuild_mod.rebuild(dataclasses.replace(deps, pool=pool),
                                                       START, START + 60_000))

        async def waiting() -> bool:
            return bool(await holder.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))

        await wait_until(waiting, message="the rebuild waits for the compaction lock")

        async def past_the_timeout() -> bool:
            # the rebuild's statement has been running longer than the pool's 1 s timeout
            return bool(await holder.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory' "
                "AND clock_timestamp() - query_start > interval '1.5 s'"))

        await wait_until(past_the_timeout, message="the rebuild's statement runs past 1.5 s")
        await tx.commit()
        rep = await asyncio.wait_for(task, 60)
    finally:
        await holder.close()
        await pool.close()
    assert rep["rows"]["job_rollups"] == 1
    assert await deps.pool.fetchval("SELECT sum(submitted) FROM job_rollups") == 1
