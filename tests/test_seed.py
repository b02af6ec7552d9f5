"""``jobline seed``: a small seed (20k jobs, Friday to Sunday) has the documented shape, its
rows are consistent with each other, its incidents are in the rows, its pending jobs really run,
and a seed is reproducible."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from jobline.analytics.seed import (
    JOB_TYPES,
    QUEUES,
    SeedReport,
    _session,
    _statement,
    _vacuumed,
    parse_count,
    seed,
)
from jobline.shared.core.jobs import submit_many
from jobline.shared.core.maintenance import reconcile
from jobline.shared.core.models import JobSpec
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.testing import drain
from jobline.worker.registry import Registry

BENCH = Path(__file__).resolve().parent.parent / "bench"
#: the conftest's template database (migrated once per session)
TEMPLATE_DB = "jobline_template"


def with_database(dsn: str, database: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/" + database


#: Monday 2026-11-23 00:00 UTC: the 3-day range is Friday, Saturday and Sunday.
END_MS = 1_795_392_000_000
JOBS = 20_000
_n = itertools.count(1)


async def _seeded_store(services: Any, admin_conn: asyncpg.Connection, redis_url: str,
                        tmp: Path, *, rollups: bool = False, minute_days: int = 7,
                        **kw: Any) -> tuple[str, Deps, SeedReport]:
    name = f"seed_{os.getpid()}_{next(_n)}"
    await admin_conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    settings = Settings().with_(database_url=with_database(services.database_url, name),
                                redis_url=redis_url, redis_prefix=f"seedt{os.getpid()}x{name}",
                                home=tmp, rollup_minute_days=minute_days)
    deps = await connect(settings)
    rep = await seed(deps, rollups=rollups, **kw)
    return name, deps, rep


@pytest.fixture(scope="module")
async def seeded(services: Any, template_db: str, admin_conn: asyncpg.Connection,
                 tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[tuple[Deps, SeedReport]]:
    name, deps, rep = await _seeded_store(services, admin_conn, services.redis_url,
                                          tmp_path_factory.mktemp("seed"), jobs=JOBS, days=3,
                                          seed_value=7, end_ms=END_MS)
    try:
        yield deps, rep
    finally:
        await deps.close()
        await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _f(row: Any) -> dict[str, float]:
    return {k: float(v) for k, v in dict(row).items()}


def test_parse_count() -> None:
    assert parse_count("100M") == 100_000_000
    assert parse_count("1m") == 1_000_000
    assert parse_count("10k") == 10_000
    assert parse_count("2500") == 2_500
    assert parse_count("1.5k") == 1_500
    with pytest.raises(ValueError):
        parse_count("0")


async def test_distributions(seeded: tuple[Deps, SeedReport]) -> None:
    deps, rep = seeded
    pool = deps.pool
    assert rep.jobs == JOBS
    assert await pool.fetchval("SELECT count(*) FROM jobs") == JOBS
    assert await pool.fetchval("SELECT count(*) FROM job_attempts") == rep.attempts
    hist = "status <> 'pending'"
    n = await pool.fetchval(f"SELECT count(*) FROM jobs WHERE {hist}")
    # queue mix: each queue's share within 20% of its weight's share
    total_w = sum(t.weight for t in JOB_TYPES)
    want = {q: sum(t.weight for t in JOB_TYPES if t.queue == q) / total_w for q in QUEUES}
    got = {r["queue_name"]: r["n"] / n for r in await pool.fetch(
        f"SELECT queue_name, count(*) AS n FROM jobs WHERE {hist} GROUP BY 1")}
    assert set(got) == set(QUEUES)
    for q in QUEUES:
        assert abs(got[q] - want[q]) < 0.2 * want[q] + 0.005, (q, got[q], want[q])
    # outcomes: 85 / 10 / 5
    r = _f(await pool.fetchrow(f"""
        SELECT avg((status = 'completed' AND attempts = 1)::int) AS first,
               avg((status = 'completed' AND attempts > 1)::int) AS retried,
               avg((status = 'dead_letter')::int) AS dlq
          FROM jobs WHERE {hist}"""))
    assert abs(r["first"] - 0.85) < 0.025, r
    assert abs(r["retried"] - 0.10) < 0.02, r
    assert abs(r["dlq"] - 0.05) < 0.015, r
    # run time classes of the completed attempts: 60 / 30 / 10
    r = _f(await pool.fetchrow("""
        SELECT avg((duration_ms < 1000)::int) AS fast,
               avg((duration_ms BETWEEN 1000 AND 10000)::int) AS medium,
               avg((duration_ms > 10000)::int) AS slow
          FROM job_attempts WHERE outcome = 'completed'"""))
    assert abs(r["fast"] - 0.60) < 0.04, r
    assert abs(r["medium"] - 0.30) < 0.04, r
    assert abs(r["slow"] - 0.10) < 0.03, r
    # peak hours carry 70% of a weekday; a weekend day is quieter
    r = _f(await pool.fetchrow(f"""
        SELECT avg((extract(hour FROM created_at AT TIME ZONE 'UTC') BETWEEN 9 AND 16)::int)
               FILTER (WHERE extract(isodow FROM created_at AT TIME ZONE 'UTC') < 6) AS peak,
               count(*) FILTER (WHERE extract(isodow FROM created_at AT TIME ZONE 'UTC') < 6)
                   AS weekday,
               count(*) FILTER (WHERE extract(isodow FROM created_at AT TIME ZONE 'UTC') >= 6)
                   / 2.0 AS weekend_day
          FROM jobs WHERE {hist}"""))
    assert abs(r["peak"] - 0.70) < 0.03, r
    assert r["weekend_day"] < 0.6 * r["weekday"], r
    # every time inside the range, nothing after its end
    assert await pool.fetchval(
        f"SELECT count(*) FROM jobs WHERE {hist} AND (completed_at >= to_timestamp($1 / 1000.0)"
        " OR created_at < to_timestamp($2 / 1000.0))", END_MS, rep.from_ms) == 0
    # the queue counts (the Queues page) include the seeded rows
    await pool.execute("SELECT jobline_fold_queue_counts()")
    counted = {(x["queue_name"], x["status"]): x["n"] for x in await pool.fetch(
        "SELECT queue_name, status, n FROM queue_counts WHERE n <> 0")}
    actual = {(x["queue_name"], x["status"]): x["n"] for x in await pool.fetch(
        "SELECT queue_name, status, count(*) AS n FROM jobs GROUP BY 1, 2")}
    assert counted == actual
    # the job types are registered, validation errors non-retryable
    assert await pool.fetchval(
        "SELECT count(*) FROM job_types WHERE 'validation_error' = ANY(non_retryable)") \
        == len(JOB_TYPES)
    # each filled partition has exactly its parent's indexes (ATTACH adopted the ones built
    # on the loaded table, it built none of its own)
    for parent in ("jobs", "job_attempts"):
        want_n = await pool.fetchval(
            "SELECT count(*) FROM pg_index WHERE indrelid = $1::regclass", parent)
        for r in await pool.fetch("""
                SELECT i.inhrelid::regclass::text AS part,
                       (SELECT count(*) FROM pg_index x WHERE x.indrelid = i.inhrelid) AS n
                  FROM pg_inherits i WHERE i.inhparent = $1::regclass""", parent):
            assert r["n"] == want_n, r
    # the rows are in the monthly partitions, none in the default one
    assert await pool.fetchval("SELECT count(*) FROM jobs_default") == 0
    assert await pool.fetchval("SELECT count(*) FROM job_attempts_default") == 0


async def test_attempts_are_consistent(seeded: tuple[Deps, SeedReport]) -> None:
    deps, _ = seeded
    bad = await deps.pool.fetchval("""
        WITH a AS (
            SELECT job_id, count(*) AS n, max(attempt) AS last, min(attempt) AS first,
                   bool_and(lease_token = attempt) AS tokens,
                   bool_and(outcome = 'completed' OR error_type IS NOT NULL) AS typed,
                   count(*) FILTER (WHERE outcome = 'completed') AS ok
              FROM job_attempts GROUP BY job_id
        )
        SELECT count(*) FROM jobs j LEFT JOIN a ON a.job_id = j.id
         WHERE j.status <> 'pending'
           AND (a.n IS DISTINCT FROM j.attempts OR a.first <> 1 OR a.last <> j.attempts
                OR NOT a.tokens OR NOT a.typed
                OR a.ok <> (j.status = 'completed')::int)""")
    assert bad == 0
    # the job row is its last attempt; attempts follow each other in time
    bad = await deps.pool.fetchval("""
        SELECT count(*) FROM jobs j JOIN job_attempts a ON a.job_id = j.id AND a.attempt = j.attempts
         WHERE a.started_at <> j.started_at OR a.finished_at <> j.completed_at
            OR a.started_at < j.created_at""")
    assert bad == 0
    assert await deps.pool.fetchval("""
        SELECT count(*) FROM job_attempts a JOIN job_attempts b
          ON b.job_id = a.job_id AND b.attempt = a.attempt + 1
         WHERE b.started_at < a.finished_at""") == 0
    # every retried job has its failed attempts, with an error message
    retried = await deps.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE status = 'completed' AND attempts > 1")
    assert retried > 0
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM job_attempts WHERE outcome <> 'completed' AND error IS NULL") == 0
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE status = 'dead_letter' AND error IS NULL") == 0


async def test_chains_and_batches(seeded: tuple[Deps, SeedReport]) -> None:
    deps, rep = seeded
    assert rep.chains > 0
    rows = await deps.pool.fetch("""
        SELECT d.job_id, d.depends_on, j.started_at, j.queue_name, p.completed_at,
               p.status AS parent_status, p.has_dependents
          FROM job_dependencies d JOIN jobs j ON j.id = d.job_id JOIN jobs p ON p.id = d.depends_on""")
    assert len(rows) == 2 * rep.chains
    for r in rows:
        assert r["queue_name"] == "reports"
        assert r["parent_status"] == "completed" and r["has_dependents"]
        assert r["completed_at"] <= r["started_at"]
    # chains of three: two edges per chain, no job depends on two
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM (SELECT job_id FROM job_dependencies GROUP BY 1 "
        "HAVING count(*) > 1) s") == 0
    # batches: totals match their jobs
    assert rep.batches > 0
    assert await deps.pool.fetchval("""
        SELECT count(*) FROM job_batches b
         WHERE b.total <> (SELECT count(*) FROM jobs j WHERE j.batch_id = b.id)
            OR b.completed_at IS NULL""") == 0


async def test_incidents_are_in_the_rows(seeded: tuple[Deps, SeedReport]) -> None:
    deps, _ = seeded
    inc = {r["kind"] + ":" + (r["queue_name"] or ""): r for r in await deps.pool.fetch(
        "SELECT * FROM labelled_incidents WHERE source = 'seed'")}
    assert {"failure_spike:webhooks", "failure_spike:email", "slowdown:ml-inference",
            "worker_crash_wave:", "outage:"} <= set(inc)
    spike = inc["failure_spike:webhooks"]
    r = _f(await deps.pool.fetchrow("""
        SELECT avg((attempts > 1 OR status = 'dead_letter')::int)
                   FILTER (WHERE created_at >= $1 AND created_at < $2) AS inside,
               avg((attempts > 1 OR status = 'dead_letter')::int)
                   FILTER (WHERE created_at < $1 OR created_at >= $2) AS outside
          FROM jobs WHERE queue_name = 'webhooks' AND status <> 'pending'""",
        spike["starts_at"], spike["ends_at"]))
    assert r["inside"] >= 3 * r["outside"], r
    slow = inc["slowdown:ml-inference"]
    r = _f(await deps.pool.fetchrow("""
        SELECT avg(a.duration_ms) FILTER (WHERE j.created_at >= $1 AND j.created_at < $2) AS inside,
               avg(a.duration_ms) FILTER (WHERE j.created_at < $1 OR j.created_at >= $2) AS outside
          FROM jobs j JOIN job_attempts a ON a.job_id = j.id AND a.outcome = 'completed'
         WHERE j.queue_name = 'ml-inference'""", slow["starts_at"], slow["ends_at"]))
    assert r["inside"] >= 2 * r["outside"], r
    crash = inc["worker_crash_wave:"]
    r = _f(await deps.pool.fetchrow("""
        SELECT count(*) FILTER (WHERE j.created_at >= $1 AND j.created_at < $2) AS inside,
               count(*) FILTER (WHERE j.created_at < $1 OR j.created_at >= $2) AS outside
          FROM job_attempts a JOIN jobs j ON j.id = a.job_id WHERE a.outcome = 'lease_expired'""",
        crash["starts_at"], crash["ends_at"]))
    assert r["inside"] > 0 and r["outside"] == 0, r
    outage = inc["outage:"]
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM job_attempts WHERE started_at >= $1 AND started_at < $2",
        outage["starts_at"], outage["ends_at"]) == 0
    # the gauges tell the same story
    assert await deps.pool.fetchval(
        "SELECT min(min) FROM analytics_samples_hour WHERE metric = 'health.up' AND "
        "subject = 'workers' AND at >= date_trunc('hour', $1::timestamptz) AND at < $2",
        outage["starts_at"], outage["ends_at"]) == 0
    assert await deps.pool.fetchval(
        "SELECT sum(value) FROM analytics_samples WHERE metric = 'workers.crashes' AND "
        "minute >= $1 AND minute < $2", crash["starts_at"], crash["ends_at"]) >= 25
    # minute samples for the last 7 days (all 3 here), hour samples for the whole range
    assert await deps.pool.fetchval(
        "SELECT count(DISTINCT minute) FROM analytics_samples WHERE metric = 'queue.depth'") \
        == 3 * 1440
    assert await deps.pool.fetchval(
        "SELECT count(DISTINCT at) FROM analytics_samples_hour WHERE metric = 'queue.depth'") \
        == 3 * 24


async def test_pending_jobs_run_and_reconcile_repairs_nothing(
        seeded: tuple[Deps, SeedReport]) -> None:
    deps, rep = seeded
    assert rep.pending >= 20
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE status = 'pending'") == rep.pending
    assert (await reconcile(deps)).added == 0
    reg = Registry()
    for t in JOB_TYPES:
        async def run(payload: dict[str, Any]) -> dict[str, Any]:
            return {"ok": True}
        reg.job(t.name, queue=t.queue)(run)
    await drain(deps, reg, queues=list(QUEUES), timeout=60)
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE status IN ('pending', 'scheduled', 'processing')") == 0
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE created_at >= to_timestamp($1 / 1000.0) "
        "AND status = 'completed'", END_MS) == rep.pending


async def test_same_seed_same_rows(services: Any, template_db: str,
                                   admin_conn: asyncpg.Connection, tmp_path: Path) -> None:
    digest = """SELECT md5(string_agg(x, '' ORDER BY x)) FROM (
                    SELECT j::text AS x FROM jobs j WHERE status <> 'pending'
                    UNION ALL SELECT a::text FROM job_attempts a
                    UNION ALL SELECT d::text FROM job_dependencies d
                    UNION ALL SELECT b::text FROM job_batches b) s"""
    out = []
    for s in (11, 11, 12):
        name, deps, _ = await _seeded_store(services, admin_conn, services.redis_url, tmp_path,
                                            jobs=3_000, days=1, seed_value=s, end_ms=END_MS,
                                            pending=0)
        try:
            out.append(await deps.pool.fetchval(digest))
        finally:
            await deps.close()
            await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert out[0] == out[1]
    assert out[0] != out[2]


async def test_an_hours_rows_are_vacuumed_right_after_their_commit(database_url: str) -> None:
    """The seed vacuums each hour's new pages right after the commit (``seed._vacuumed``):
    their hint bits are set then, not by the first index build after a checkpoint, which
    (data checksums on) writes a page image to WAL per page; and they are all-visible and
    all-frozen, so autovacuum's first pass over the attached partitions has nothing to
    rewrite. Seen in what a scan after a checkpoint dirties (nothing after a vacuumed insert,
    every page after a plain one) and in the visibility map."""
    conn = await asyncpg.connect(database_url)
    try:
        await _session(conn)

        def insert(table: str) -> Any:
            return _statement(f"INSERT INTO {table} SELECT g, repeat('x', 200) "
                              "FROM generate_series(1, 20000) g", [])

        async def dirtied_by_a_scan(table: str) -> int:
            plan = await conn.fetchval(
                f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT count(*) FROM {table}")
            return int(json.loads(plan)[0]["Plan"]["Shared Dirtied Blocks"])

        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_visibility")
        for t in ("hint_vacuumed", "hint_plain"):
            await conn.execute(f"CREATE TABLE {t} (i int, pad text) "
                               "WITH (autovacuum_enabled = off)")
        await _vacuumed(insert("hint_vacuumed"), ["hint_vacuumed"])(conn)
        await insert("hint_plain")(conn)
        pages = await conn.fetchval(
            "SELECT pg_relation_size('hint_plain') / current_setting('block_size')::int")
        assert pages > 500
        summary = "SELECT all_visible, all_frozen FROM pg_visibility_map_summary($1::regclass)"
        assert tuple(await conn.fetchrow(summary, "hint_vacuumed")) == (pages, pages)
        assert tuple(await conn.fetchrow(summary, "hint_plain")) == (0, 0)
        # written out clean, as a checkpoint before the index builds leaves them
        await conn.execute("CHECKPOINT")
        assert await dirtied_by_a_scan("hint_plain") == pages
        assert await dirtied_by_a_scan("hint_vacuumed") == 0
    finally:
        await conn.close()


async def test_cli_seed(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    """``jobline seed`` finds the store like every command (DATABASE_URL/REDIS_URL here)."""
    assert settings.database_url and settings.redis_url
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("JOBLINE_REDIS_PREFIX", settings.redis_prefix)
    monkeypatch.setenv("JOBLINE_HOME", str(settings.home))
    from jobline.cli import main

    # a job the live system wrote this month, before the seed replaces the month's partition
    deps = await connect(settings)
    try:
        [live] = await submit_many(deps, [JobSpec(queue="live", job_type="t", payload={})])
    finally:
        await deps.close()
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["seed", "--jobs", "2k", "--days", "1", "--seed", "3",
                                          "--no-rollups"])
    assert code == 0
    assert "seeded 2000 jobs (20 pending)" in capsys.readouterr().out
    conn = await asyncpg.connect(settings.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM jobs") == 2001
        assert await conn.fetchval("SELECT status FROM jobs WHERE id = $1",
                                   live.submitted.id) == "pending"
    finally:
        await conn.close()
    assert await asyncio.to_thread(main, ["seed", "--jobs", "lots"]) == 2


async def test_the_rollups_rebuilt_from_the_seed_answer_the_analytics(
        seeded: tuple[Deps, SeedReport]) -> None:
    """The seed's last step (``build_rollups``, the rebuild) over the seeded range: the day rows
    and the analytics summary agree with the raw rows."""
    from jobline.analytics import query
    from jobline.analytics.seed import build_rollups

    deps, rep = seeded
    out = await build_rollups(deps, rep.from_ms, rep.to_ms)
    assert out["attempts"] > 0
    assert out["bulk"] is True  # a new store: indexes built after the rows
    bulk_days = await deps.pool.fetch("SELECT * FROM job_rollups_day ORDER BY 1, 2, 3")
    # with rollups in place the step is the live system's rebuild, with the same rows
    again = await build_rollups(deps, rep.from_ms, rep.to_ms)
    assert again["bulk"] is False and "build_indexes" not in again["phases"]
    assert await deps.pool.fetch("SELECT * FROM job_rollups_day ORDER BY 1, 2, 3") == bulk_days
    raw = await deps.pool.fetchrow(
        "SELECT count(*) FILTER (WHERE status = 'completed') AS completed, "
        "count(*) FILTER (WHERE status = 'dead_letter') AS dead FROM jobs "
        "WHERE completed_at >= $1 AND completed_at < $2", to_dt(rep.from_ms), to_dt(rep.to_ms))
    day = await deps.pool.fetchrow(
        "SELECT sum(completed) AS completed, sum(dead_letter) AS dead FROM job_rollups_day "
        "WHERE at >= $1 AND at < $2", to_dt(rep.from_ms), to_dt(rep.to_ms))
    assert (day["completed"], day["dead"]) == (raw["completed"], raw["dead"])
    s = await query.summary(deps, query.scope(rep.to_ms, rep.from_ms, rep.to_ms))
    assert s["processed"]["value"] == raw["completed"] + raw["dead"]
    assert s["p95Ms"]["value"] is not None and s["p95Ms"]["value"] > s["p50Ms"]["value"]


async def test_a_fresh_stores_rollups_are_aggregated_as_the_rows_are_written(
        services: Any, template_db: str, admin_conn: asyncpg.Connection,
        tmp_path: Path) -> None:
    """On a fresh store the seed aggregates each hour's minute rollup rows in the statement
    that writes the hour (``seed._parts_sql``), and the chains' and the pending jobs' after
    them; the rollups written from those parts are, row for row, what a rebuild from the raw
    rows writes, at minute grain after the cutoff and hour grain before it."""
    from jobline.analytics.rebuild import TABLES, rebuild
    from jobline.shared.platform.clock import from_dt

    # the minute retention's cutoff falls inside the seeded range, whatever today is
    now = int(time.time() * 1000)
    days = -(-(now - (END_MS - 86_400_000)) // 86_400_000)
    name, deps, rep = await _seeded_store(services, admin_conn, services.redis_url, tmp_path,
                                          rollups=True, minute_days=days, jobs=6_000, days=2,
                                          seed_value=5, end_ms=END_MS, pending=30)
    try:
        out = rep.rollups
        assert out is not None and out["bulk"] is True
        assert out["attempts"] is None  # the raw rows were not read
        assert "attempts" not in out["phases"] and "analyze_parts" in out["phases"]
        # written on two connections, a transaction per unit of tables, each of which built its
        # indexes again: a primary key on each, and the two histogram metric indexes
        assert out["connections"] == 2
        idx = await deps.pool.fetch(
            "SELECT indrelid::regclass::text AS t, indisprimary AS pk FROM pg_index "
            "WHERE indrelid = ANY($1::regclass[])", list(TABLES))
        assert sorted(r["t"] for r in idx if r["pk"]) == sorted(TABLES)
        assert sorted(r["t"] for r in idx if not r["pk"]) == [
            "job_rollup_histograms_day", "job_rollup_histograms_hour"]
        # the parts are gone
        assert await deps.pool.fetchval(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'seed\\_part\\_%'") == 0
        cutoff = from_dt(datetime.fromisoformat(out["cutoff"]))
        assert rep.from_ms < cutoff < rep.to_ms

        async def snapshot() -> dict[str, list[Any]]:
            return {t: [tuple(r.values()) for r in await deps.pool.fetch(
                f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4, 5")] for t in TABLES}

        seeded_rows = await snapshot()
        assert all(seeded_rows[t] for t in TABLES)
        # minute rows from the cutoff on (the pending jobs' submissions among them)
        assert await deps.pool.fetchval("SELECT min(minute) FROM job_rollups") >= to_dt(cutoff)
        assert await deps.pool.fetchval(
            "SELECT sum(submitted) FROM job_rollups WHERE minute >= $1",
            to_dt(rep.to_ms)) == rep.pending
        for t in TABLES:
            await deps.pool.execute(f"DELETE FROM {t}")
        again = await rebuild(deps, rep.from_ms, now + 3_600_000, cutoff_ms=cutoff)
        assert again["attempts"] == rep.attempts
        rebuilt = await snapshot()
        for t in TABLES:
            assert rebuilt[t] == seeded_rows[t], t
    finally:
        await deps.close()
        await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_the_analytics_percentiles_are_within_5_percent_of_the_raw_rows(
        seeded: tuple[Deps, SeedReport]) -> None:
    """``bench/analytics_accuracy.py`` at a tiny scale: over the rollups rebuilt from the seed,
    the read layer's p50/p95/p99 of duration, wait and e2e are within 5% (issue 16; the sketch
    promises 2%) of the exact nearest-rank values from the raw rows, for whole ranges,
    unfiltered, per queue and per queue + job type, and count exactly the range's events."""
    sys.path.insert(0, str(BENCH))
    import analytics_accuracy as acc

    from jobline.analytics.seed import build_rollups

    deps, rep = seeded
    await build_rollups(deps, rep.from_ms, rep.to_ms)
    # the store is older than the minute retention: the minute-edged range reads whole hours
    # (documented), so its counts differ, but its percentiles match the time it covers
    spans = acc.ranges(rep.from_ms, rep.to_ms)
    assert set(spans) == {"3d", "last 24h", "past 24h, hour edges", "past 24h, minute edges"}
    cells = acc.cells(spans, [("email", "email.send"), ("webhooks", "webhook.deliver"),
                              ("video-encoding", "video.transcode")])
    rows = await acc.measure(deps, cells)
    assert len(rows) == 3 * len(cells) == 3 * 4 * (1 + 3 + 3)
    for r in rows:
        assert r["exact_n"] > 0, r
        for p in acc.PCTS:
            assert r[f"p{p}_exact"] is not None
            assert r[f"p{p}_error_vs_read_range"] <= acc.SKETCH_BOUND, (p, r)
            if "minute" not in r["range"]:
                assert r["read_n"] == r["exact_n"], r
                assert r[f"p{p}_error"] <= acc.REQUIRED, (p, r)
    assert all(r["read_n"] > r["exact_n"] for r in rows if "minute" in r["range"])
    summary = acc.summarize(rows)
    assert {(s["metric"], s["percentile"]) for s in summary} == {
        (m, f"p{p}") for m in acc.METRICS for p in acc.PCTS}
    assert all(s["cells"] == 3 * 7 for s in summary)  # the minute-edged range left out
    assert max(s["max_error"] for s in summary) <= acc.SKETCH_BOUND
