"""``jobline analytics rebuild``: recompute every rollup grain from the raw rows.

:func:`rebuild` recomputes ``job_rollups*``, ``job_rollup_histograms*``, ``job_rollup_errors*``
and ``job_rollup_attempts*`` (minute, hour and day grains) from ``jobs`` + ``job_attempts`` for
the whole UTC days touching ``[from, to)``: the rows of those days are deleted, then inserted
again, in one transaction. The result is, row for row, what the relay's live fold
(:mod:`jobline.analytics.rollups`) writes for the same history (tests/test_rollups.py runs a
workload through the engine and the relay and checks it). The semantics are docs/analytics.md's
"Rollups"; in terms of the raw rows:

* ``submitted``: a job at ``created_at``; ``cancelled``: a ``cancelled`` job at ``completed_at``.
* ``started`` and ``wait``: every attempt row at ``started_at`` (wait = ``started_at - due_at``),
  plus each job ``processing`` now (its ``scheduled_for`` is its attempt's due time).
* at an attempt's ``finished_at``: ``next_status = 'completed'``: ``completed``, duration, e2e
  (``finished_at - jobs.created_at``), attempts.completed; a *counted* attempt followed by
  ``pending``/``scheduled``/``dead_letter``: ``failed``, failed_ms, the failed histogram, its
  error type, attempts.failed, and ``retries`` (pending/scheduled) or ``dead_letter``.

Rows written before migration 0023 (or by a loader that leaves the columns out) have no
``due_at``/``counted``/``next_status``; they are inferred: due = the job's ``scheduled_for`` for
its last attempt, else the attempt's start (wait 0); counted unless the outcome is ``retry``,
``released`` or ``cancelled``; the last attempt of a dead-lettered job led to the dead letter,
every other failed one to a retry.

One pass over the raw rows of the range, set-based (the minute rows are aggregated once into a
working table, :func:`working`; hour and day rows are sums of them, of the minutes before the
compaction watermark only: migration 0030, :mod:`jobline.analytics.rollups`). Minute rows older than
``JOBLINE_ROLLUP_MINUTE_DAYS`` are not written (retention would drop them). Events of the range
that the relay has not folded yet are counted again when it folds them: rebuild ranges the live
system has finished with (the seed's history, a repair after an outage).

The SELECTs are builders (:func:`attempt_facts`, :func:`minute_selects`) over any source of
job and attempt rows: the seed runs them over the rows each of its statements has just written
and hands the results to :func:`rebuild` as ``parts``, which then reads no raw row.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from jobline.analytics.rollups import COLUMNS, COMPACT_LOCK_KEY, GRAINS, SUMS, WATERMARK
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps

DAY_MS = 86_400_000
#: Client-side timeout of each rebuild statement (s). The pool's ``command_timeout`` (60 s) is
#: for interactive work; a month of a 100M-job seed takes minutes per statement (the seed's
#: rollups step died on the pool's timeout at 1M jobs on a loaded machine).
STATEMENT_TIMEOUT_S = 24 * 3600.0


def _ms(expr: str) -> str:
    """Milliseconds of an interval, clamped to int as the engine writes them (core/sql.py)."""
    return f"least(greatest(0, extract(epoch FROM {expr}) * 1000), 2147483647)::int"


def attempt_facts(lo: str = "$1", hi: str = "$2", attempts: str = "job_attempts",
                  jobs: str = "jobs") -> str:
    """The SELECT of one row per attempt touching [``lo``, ``hi``): its time facts and its fate,
    from the rows of ``attempts`` and ``jobs`` (tables, or the seed's CTEs of the rows it has
    just written: ``jobline.analytics.seed._parts_sql``)."""
    return f"""
SELECT j.queue_name, j.job_type, a.attempt, a.started_at, a.finished_at, a.duration_ms,
       coalesce(nullif(a.error_type, ''), 'unknown') AS error_type,
       {_ms("a.started_at - coalesce(a.due_at, CASE WHEN a.lease_token = j.lease_token "
            "THEN j.scheduled_for ELSE a.started_at END)")} AS wait_ms,
       {_ms("a.finished_at - j.created_at")} AS e2e_ms,
       f.nxt,
       f.counted AND f.nxt IN ('pending', 'scheduled', 'dead_letter') AS failed
  FROM {attempts} a JOIN {jobs} j ON j.id = a.job_id
 CROSS JOIN LATERAL (SELECT
       coalesce(a.next_status, CASE
           WHEN a.outcome IN ('completed', 'cancelled') THEN a.outcome
           WHEN a.lease_token = j.lease_token AND j.status IN ('dead_letter', 'failed')
                THEN 'dead_letter'
           ELSE 'pending' END) AS nxt,
       coalesce(a.counted, a.outcome NOT IN ('retry', 'released', 'cancelled')) AS counted) f
 WHERE (a.started_at >= {lo} AND a.started_at < {hi})
    OR (a.finished_at >= {lo} AND a.finished_at < {hi})
"""


ATTEMPT_FACTS = "CREATE TEMP TABLE rb_att ON COMMIT DROP AS" + attempt_facts()

# The finest grain a row is written at: minutes from the minute retention's cutoff ($3) on,
# hours before it (no minute row is kept there: aggregating by minute only to sum them again
# cost most of a month's rebuild). A key before $3 is an hour start, so it stays before $3.
_M = ("(CASE WHEN {0} >= {cut} THEN date_trunc('minute', {0}, 'UTC') "
      "ELSE date_trunc('hour', {0}, 'UTC') END)")


def minute_selects(lo: str = "$1", hi: str = "$2", cut: str = "$3", att: str = "rb_att",
                   jobs: str = "jobs") -> dict[str, str]:
    """The SELECTs of the minute working rows, by working table (``rb_r`` counters, ``rb_h``
    histogram buckets, ``rb_e`` error types, ``rb_a`` attempt numbers): the events in
    [``lo``, ``hi``) of the attempt facts ``att`` (:func:`attempt_facts`) and the jobs
    ``jobs``, keyed by their minute from ``cut`` on and by their hour before it. Every value is
    a count or a sum, so the rows of disjoint sets of jobs add up to the rows of their union
    (what the seed relies on: :func:`rebuild`'s ``parts``)."""
    def m(col: str) -> str:
        return _M.format(col, cut=cut)

    rollups = f"""
SELECT t, queue_name, job_type,
       {", ".join(f"sum({c})::bigint AS {c}" for c in (*COLUMNS, *SUMS))}
  FROM (
    SELECT {m("created_at")} AS t, queue_name, job_type, count(*) AS submitted,
           0 AS started, 0 AS completed, 0 AS failed, 0 AS retries, 0 AS dead_letter,
           0 AS cancelled, 0 AS duration_sum_ms, 0 AS wait_sum_ms, 0 AS e2e_sum_ms,
           0 AS failed_ms
      FROM {jobs} WHERE created_at >= {lo} AND created_at < {hi} GROUP BY 1, 2, 3
    UNION ALL
    SELECT {m("completed_at")}, queue_name, job_type, 0, 0, 0, 0, 0, 0, count(*),
           0, 0, 0, 0
      FROM {jobs} WHERE status = 'cancelled' AND completed_at >= {lo} AND completed_at < {hi}
     GROUP BY 1, 2, 3
    UNION ALL
    SELECT {m("started_at")}, queue_name, job_type, 0, count(*), 0, 0, 0, 0, 0, 0,
           sum({_ms("started_at - scheduled_for")}), 0, 0
      FROM {jobs} WHERE status = 'processing' AND started_at >= {lo} AND started_at < {hi}
     GROUP BY 1, 2, 3
    UNION ALL
    SELECT {m("started_at")}, queue_name, job_type, 0, count(*), 0, 0, 0, 0, 0, 0,
           sum(wait_ms), 0, 0
      FROM {att} WHERE started_at >= {lo} AND started_at < {hi} GROUP BY 1, 2, 3
    UNION ALL
    SELECT {m("finished_at")}, queue_name, job_type, 0, 0,
           count(*) FILTER (WHERE nxt = 'completed'), count(*) FILTER (WHERE failed),
           count(*) FILTER (WHERE failed AND nxt IN ('pending', 'scheduled')),
           count(*) FILTER (WHERE nxt = 'dead_letter'), 0,
           coalesce(sum(duration_ms) FILTER (WHERE nxt = 'completed'), 0), 0,
           coalesce(sum(e2e_ms) FILTER (WHERE nxt = 'completed'), 0),
           coalesce(sum(duration_ms) FILTER (WHERE failed), 0)
      FROM {att}
     WHERE finished_at >= {lo} AND finished_at < {hi}
       AND (nxt IN ('completed', 'dead_letter') OR failed)
     GROUP BY 1, 2, 3
  ) AS s
 GROUP BY 1, 2, 3
"""
    histograms = f"""
SELECT t, queue_name, job_type, metric, b AS bucket, count(*)::bigint AS n
  FROM (
    SELECT {m("finished_at")} AS t, queue_name, job_type, v.metric,
           jobline_bucket(v.ms) AS b
      FROM {att} CROSS JOIN LATERAL (VALUES ('duration', duration_ms), ('e2e', e2e_ms))
           AS v(metric, ms)
     WHERE finished_at >= {lo} AND finished_at < {hi} AND nxt = 'completed'
    UNION ALL
    SELECT {m("finished_at")}, queue_name, job_type, 'failed',
           jobline_bucket(duration_ms)
      FROM {att} WHERE finished_at >= {lo} AND finished_at < {hi} AND failed
    UNION ALL
    SELECT {m("started_at")}, queue_name, job_type, 'wait', jobline_bucket(wait_ms)
      FROM {att} WHERE started_at >= {lo} AND started_at < {hi}
    UNION ALL
    SELECT {m("started_at")}, queue_name, job_type, 'wait',
           jobline_bucket({_ms("started_at - scheduled_for")})
      FROM {jobs} WHERE status = 'processing' AND started_at >= {lo} AND started_at < {hi}
  ) AS s
 GROUP BY 1, 2, 3, 4, 5
"""
    errors = f"""
SELECT {m("finished_at")} AS t, queue_name, job_type, error_type, count(*)::bigint AS n
  FROM {att} WHERE finished_at >= {lo} AND finished_at < {hi} AND failed
 GROUP BY 1, 2, 3, 4
"""
    attempts = f"""
SELECT {m("finished_at")} AS t, queue_name, job_type, attempt,
       count(*) FILTER (WHERE nxt = 'completed')::bigint AS completed,
       count(*) FILTER (WHERE failed)::bigint AS failed
  FROM {att}
 WHERE finished_at >= {lo} AND finished_at < {hi} AND (nxt = 'completed' OR failed)
 GROUP BY 1, 2, 3, 4
"""
    return {"rb_r": rollups, "rb_h": histograms, "rb_e": errors, "rb_a": attempts}


#: (phase name, working table, its CREATE from the raw rows of [$1, $2), cutoff $3)
MINUTES = tuple((name, temp, f"CREATE TEMP TABLE {temp} ON COMMIT DROP AS" + sql)
                for name, (temp, sql) in zip(("rollups", "histograms", "errors",
                                              "attempt_numbers"),
                                             minute_selects().items(), strict=True))

#: (rollup table, its minute working table, key columns, value columns)
_TABLES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("job_rollups", "rb_r", ("queue_name", "job_type"), COLUMNS + SUMS),
    ("job_rollup_histograms", "rb_h", ("queue_name", "job_type", "metric", "bucket"), ("n",)),
    ("job_rollup_errors", "rb_e", ("queue_name", "job_type", "error_type"), ("n",)),
    ("job_rollup_attempts", "rb_a", ("queue_name", "job_type", "attempt"),
     ("completed", "failed")),
)


_WORKING = re.compile(r"\b(rb_(?:att|r|h|e|a))\b")
_CREATE_TEMP = re.compile(r"CREATE TEMP TABLE (\w+) ON COMMIT DROP AS")


def working(sql: str, suffix: str) -> str:
    """``sql`` on this rebuild's own working tables: ``rb_*`` renamed ``rb_*_<suffix>`` and
    created UNLOGGED instead of TEMP. Parallel workers cannot read a temporary table (it lives
    in its backend's local buffers), so every aggregate over the attempt facts ran on one core;
    an unlogged table is read by all of them and, like a temporary one, writes no WAL. The
    suffix (the backend's pid) keeps two rebuilds apart; the tables are dropped before the
    commit, and a failed transaction rolls their creation back."""
    return _CREATE_TEMP.sub(r"CREATE UNLOGGED TABLE \1 AS",
                            _WORKING.sub(lambda m: f"{m.group(1)}_{suffix}", sql))


def _statements(parts: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """(table, SQL) to run after the minute working tables exist: delete the days' rows of
    every grain ($1/$2 the whole days), insert them again (minute rows: $1 the oldest kept).
    With ``parts`` (tables of minute rows in the working tables' shapes, a key possibly in
    several rows) they are read instead, the minute rows summed per key: one sort both merges
    them and orders them, where merging into a working table first wrote every row once more."""
    out: list[tuple[str, str]] = []
    for i, (table, temp, keys, vals) in enumerate(_TABLES):
        src = temp if parts is None else parts[i]
        for grain, _, suffix, tcol in GRAINS:
            name = table + suffix
            out.append((name, f"DELETE FROM {name} WHERE {tcol} >= $1 AND {tcol} < $2"))
            k = ", ".join(keys)
            # ORDER BY the primary key's columns: rows in key order append to the key's
            # rightmost leaf (btree's fast path), where a hash aggregate's order would touch a
            # random page of an index far larger than shared_buffers per row (the 100M seed's
            # minute histograms: > 30 min of random reads, docs/analytics.md). A bulk rebuild
            # (no index while it inserts) keeps the order too: it is the heap's, and reads that
            # fetch rows from the heap (the minute table has no covering index) read a range's
            # rows from adjacent pages instead of pages spread over the whole table (a 100M seed
            # built without it answered the unfiltered 24-hour reads 1.4-1.7x slower than the
            # run before it; the heap's order is the difference known).
            if grain == "minute" and parts is None:
                sql = (f"INSERT INTO {name} ({tcol}, {k}, {', '.join(vals)})\n"
                       f"SELECT t, {k}, {', '.join(vals)} FROM {src} WHERE t >= $1"
                       f" ORDER BY t, {k}")
            elif grain == "minute":
                sql = (f"INSERT INTO {name} ({tcol}, {k}, {', '.join(vals)})\n"
                       f"SELECT t, {k}, " + ", ".join(f"sum({v})" for v in vals)
                       + f" FROM {src} WHERE t >= $1 GROUP BY t, {k} ORDER BY t, {k}")
            else:
                sql = (f"INSERT INTO {name} ({tcol}, {k}, {', '.join(vals)})\n"
                       f"SELECT date_trunc('{grain}', t, 'UTC'), {k}, "
                       + ", ".join(f"sum({v})" for v in vals)
                       + f" FROM {src} WHERE t < {WATERMARK} GROUP BY 1, {k} ORDER BY 1, {k}")
            out.append((name, sql))
    return out


STATEMENTS = _statements()
#: Every table a rebuild writes.
TABLES = tuple(table + suffix for table, *_ in _TABLES for _, _, suffix, _ in GRAINS)

# A rollup table's indexes and the statements that build them again: its primary key as a
# constraint (what the live fold's ON CONFLICT names), any other index by its definition.
_INDEX_DEFS = """
SELECT i.indrelid::regclass::text AS tbl, i.indexrelid::regclass::text AS idx, c.conname,
       CASE WHEN c.conname IS NULL THEN pg_get_indexdef(i.indexrelid)
            ELSE format('ALTER TABLE %s ADD CONSTRAINT %I %s', i.indrelid::regclass, c.conname,
                        pg_get_constraintdef(c.oid)) END AS build
  FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.contype = 'p'
 WHERE i.indrelid = ANY($1::regclass[])
 ORDER BY 1, 2
"""


async def _drop_indexes(conn: Any, tables: Sequence[str], tmo: float) -> list[str]:
    """Drop the indexes of ``tables``; return the statements that build them again."""
    rows = await conn.fetch(_INDEX_DEFS, list(tables), timeout=tmo)
    for r in rows:
        if r["conname"] is not None:
            await conn.execute(f'ALTER TABLE {r["tbl"]} DROP CONSTRAINT "{r["conname"]}"',
                               timeout=tmo)
        else:
            await conn.execute(f"DROP INDEX {r['idx']}", timeout=tmo)
    return [r["build"] for r in rows]


def day_range(from_ms: int, to_ms: int) -> tuple[int, int]:
    """The whole UTC days touching ``[from, to)``."""
    lo = from_ms // DAY_MS * DAY_MS
    hi = -(-max(to_ms, from_ms + 1) // DAY_MS) * DAY_MS
    return lo, hi


def minute_cutoff(deps: Deps, watermark: datetime | None) -> int:
    """The first minute written at minute grain: ``JOBLINE_ROLLUP_MINUTE_DAYS`` before now,
    or the hour of the compaction ``watermark`` if that is earlier (minutes not compacted yet
    are read from their minute rows, :func:`jobline.analytics.query.decompose`, so they are
    written at minute grain even past the minute retention)."""
    cutoff = (deps.clock.now_ms() - deps.settings.rollup_minute_days * DAY_MS) // 60_000 * 60_000
    if watermark is not None:
        cutoff = min(cutoff, from_dt(watermark) // 3_600_000 * 3_600_000)
    return cutoff


async def rebuild(deps: Deps, from_ms: int, to_ms: int, *, vacuum: bool = True,
                  bulk: bool = False, parts: Sequence[str] | None = None,
                  cutoff_ms: int | None = None, connections: int = 1) -> dict[str, Any]:
    """Recompute every rollup grain for the whole UTC days touching ``[from_ms, to_ms)`` from
    ``jobs`` + ``job_attempts`` (delete then insert, one transaction), then (``vacuum``)
    ``VACUUM (ANALYZE)`` the tables written, so the reads after it have statistics and
    index-only scans.

    ``bulk`` is for a store nobody uses yet (the seed's): the rollup tables' indexes are
    dropped before the inserts and built again after them, in the same transaction, so the
    rows written are the same and a failure leaves the indexes as they were. One index build
    from all the rows (on both cores: PostgreSQL's parallel build) is cheaper than updating
    every index row by row (a 5M-job seed's inserts: see docs/analytics.md, "Rebuild"). The
    transaction holds the tables' exclusive locks from the drop on, so the live fold and the
    analytics reads wait for it: never on a live system. Returns what it did:
    ``from``/``to`` (the days, ISO), ``cutoff`` (the first minute written at minute grain),
    ``attempts`` (attempt rows read), ``rows`` (rows written per table), ``seconds`` and
    ``phases`` (seconds per step).

    ``parts`` (the seed's) are four tables of minute working rows already aggregated, in the
    order and shape of :func:`minute_selects`' (``rb_r``, ``rb_h``, ``rb_e``, ``rb_a``), with
    ``cutoff_ms`` the cutoff they were keyed with (:func:`minute_cutoff`); a key may have
    several rows (one per set of jobs aggregated), summed by the inserts. The raw rows are not read
    (``attempts`` is None): the caller vouches that the parts hold every job of the days.

    ``connections`` > 1 (a bulk rebuild from ``parts`` only) writes the tables on that many
    connections at once, a transaction per family's minute table and per its hour and day
    tables (:func:`_rebuild_tables`); ``phases`` are then summed over the connections."""
    if to_ms <= from_ms:
        raise ValueError("rebuild: from must be before to")
    if parts is not None and (len(parts) != len(MINUTES) or cutoff_ms is None):
        raise ValueError("rebuild: parts needs a table per working table and their cutoff")
    if connections > 1 and not (bulk and parts is not None):
        raise ValueError("rebuild: several connections are for a bulk rebuild from parts")
    lo, hi = day_range(from_ms, to_ms)
    if connections > 1 and parts is not None and cutoff_ms is not None:
        return await _rebuild_tables(deps, lo, hi, parts, cutoff_ms, connections, vacuum)
    t0 = time.perf_counter()
    rows: dict[str, int] = {}
    phases: dict[str, float] = {}
    args = (to_dt(lo), to_dt(hi))
    tmo = STATEMENT_TIMEOUT_S
    async with deps.pool.acquire() as conn, conn.transaction():
        # big hash aggregates over a month of jobs stay in memory
        await conn.execute("SET LOCAL work_mem = '256MB'", timeout=tmo)
        # The compaction watermark cannot move until this commits: the hour/day rows written
        # hold exactly the minutes before it, like the live ones (the rest is compacted later).
        await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", COMPACT_LOCK_KEY,
                           timeout=tmo)
        # Minutes not compacted yet are read from their minute rows (query.decompose), so they
        # are written at minute grain even past the minute retention.
        cutoff = (cutoff_ms if cutoff_ms is not None else
                  minute_cutoff(deps, await conn.fetchval(f"SELECT {WATERMARK}", timeout=tmo)))
        t = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal t
            now = time.perf_counter()
            phases[name] = round(phases.get(name, 0.0) + now - t, 3)
            t = now

        sfx = str(await conn.fetchval("SELECT pg_backend_pid()", timeout=tmo))
        attempts: int | None = None
        if parts is None:
            status = await conn.execute(working(ATTEMPT_FACTS, sfx), *args, timeout=tmo)
            attempts = int(status.rsplit(" ", 1)[-1])
            await conn.execute(working("ANALYZE rb_att", sfx), timeout=tmo)
            lap("attempts")
            for name, _, sql in MINUTES:
                await conn.execute(working(sql, sfx), *args, to_dt(cutoff), timeout=tmo)
                lap(name)
        else:
            await _analyze(conn, parts)
            lap("analyze_parts")
        builds: list[str] = []
        if bulk:
            await conn.execute("SET LOCAL maintenance_work_mem = '1GB'", timeout=tmo)
            builds = await _drop_indexes(conn, TABLES, tmo)
            lap("drop_indexes")
        for name, sql in (STATEMENTS if parts is None else _statements(parts)):
            if sql.startswith("DELETE"):
                await conn.execute(sql, *args, timeout=tmo)
                lap("delete")
                continue
            status = await conn.execute(working(sql, sfx),
                                        *((to_dt(cutoff),) if "$1" in sql else ()),
                                        timeout=tmo)
            rows[name] = rows.get(name, 0) + int(status.rsplit(" ", 1)[-1])
            lap("insert")
        for build in builds:
            await conn.execute(build, timeout=tmo)
        if builds:
            lap("build_indexes")
        if parts is None:
            await conn.execute(working("DROP TABLE rb_att, rb_r, rb_h, rb_e, rb_a", sfx),
                               timeout=tmo)
    if vacuum:
        t = time.perf_counter()
        async with deps.pool.acquire() as conn:
            # VACUUM cannot run in a transaction block, hence after the commit. Without it the
            # reads that follow a rebuild ran on tables the planner had no statistics for and
            # whose visibility map was empty, so every "index-only" histogram scan fetched each
            # row from the heap (a 10M-job seed: slow-jobs over 24 h ~2x faster, durations over
            # 30 days ~5x, for 7 s of VACUUM; docs/analytics.md). Autovacuum gets there too,
            # minutes later and while users read.
            for name in rows:
                await conn.execute(f"VACUUM (ANALYZE) {name}", timeout=tmo)
        phases["vacuum"] = round(time.perf_counter() - t, 3)
    return {"from": _iso(lo), "to": _iso(hi), "cutoff": _iso(cutoff), "attempts": attempts,
            "rows": rows,
            "seconds": round(time.perf_counter() - t0, 3), "phases": phases}


async def _analyze(conn: Any, parts: Sequence[str]) -> None:
    """ANALYZE the parts: the inserts' plans need their sizes (written by other sessions,
    never analyzed: autovacuum is off on them)."""
    for part in parts:
        await conn.execute(f"ANALYZE {part}", timeout=STATEMENT_TIMEOUT_S)


def _tasks(parts: Sequence[str], lo: datetime, hi: datetime,
           cutoff: datetime) -> list[tuple[tuple[str, ...], list[tuple[str, tuple[Any, ...]]]]]:
    """:func:`_rebuild_tables`' units of work, biggest first: (tables, [(SQL, args)]) per
    family, its minute table alone, its hour and day tables together; the histograms' first
    (a 100M-job seed: 42M minute, 12M hour rows; every other table under 1M), so the small
    ones fill in beside the last of them. The day rows are summed from the hour rows just
    written, not from the part: both hold exactly the minutes before the watermark, and the
    hour rows are a fraction of the part's (the 100M seed's day insert from the part read
    all of it and sorted it again, ~4 minutes beside the minute table's)."""
    # (DELETE, INSERT) per table, as rebuild runs them
    stmts: dict[str, list[str]] = {}
    for name, sql in _statements(parts):
        stmts.setdefault(name, []).append(sql)
    minute: list[tuple[tuple[str, ...], list[tuple[str, tuple[Any, ...]]]]] = []
    coarse: list[tuple[tuple[str, ...], list[tuple[str, tuple[Any, ...]]]]] = []
    for table, _, keys, vals in _TABLES:
        k = ", ".join(keys)
        minute.append(((table,), [(stmts[table][0], (lo, hi)), (stmts[table][1], (cutoff,))]))
        hour, day = table + "_hour", table + "_day"
        coarse.append(((hour, day), [
            (stmts[hour][0], (lo, hi)), (stmts[day][0], (lo, hi)), (stmts[hour][1], ()),
            (f"INSERT INTO {day} (at, {k}, {', '.join(vals)})\n"
             f"SELECT date_trunc('day', at, 'UTC'), {k}, "
             + ", ".join(f"sum({v})" for v in vals)
             + f" FROM {hour} WHERE at >= $1 AND at < $2 GROUP BY 1, {k} ORDER BY 1, {k}",
             (lo, hi))]))
    return [x for pair in zip(minute, coarse, strict=True) for x in pair]


async def _rebuild_tables(deps: Deps, lo: int, hi: int, parts: Sequence[str], cutoff: int,
                          connections: int, vacuum: bool) -> dict[str, Any]:
    """:func:`rebuild` in bulk from ``parts`` on ``connections`` connections: each unit of
    :func:`_tasks` in its own transaction (drop its tables' indexes, delete their days,
    insert, build the indexes, commit, then VACUUM them), taken by whichever connection is
    free. An INSERT ... SELECT runs on one core (PostgreSQL plans no parallel workers for a
    write), so one connection left half of a 2-core machine idle for the whole step (the
    100M seed: 673 s). The tables are disjoint, so the transactions take no lock of each
    other's. The price is atomicity: a failure leaves the tables committed before it
    rebuilt and the rest as they were, which only a store nobody uses yet (the seed's,
    ``bulk``) may be left with; the seed rebuilds from the raw rows when it is run again."""
    t0 = time.perf_counter()
    tmo = STATEMENT_TIMEOUT_S
    rows: dict[str, int] = {}
    phases: dict[str, float] = {}

    def add(name: str, since: float) -> float:
        now = time.perf_counter()
        phases[name] = round(phases.get(name, 0.0) + now - since, 3)
        return now

    t = time.perf_counter()
    async with deps.pool.acquire() as conn:
        await _analyze(conn, parts)
    add("analyze_parts", t)
    queue = _tasks(parts, to_dt(lo), to_dt(hi), to_dt(cutoff))

    async def write(tables: Sequence[str], stmts: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        async with deps.pool.acquire() as conn:
            async with conn.transaction():
                await conn.execute("SET LOCAL work_mem = '256MB'", timeout=tmo)
                await conn.execute("SET LOCAL maintenance_work_mem = '1GB'", timeout=tmo)
                # as in rebuild: the compaction watermark stays put until this commits
                await conn.execute("SELECT pg_advisory_xact_lock_shared($1)",
                                   COMPACT_LOCK_KEY, timeout=tmo)
                t = time.perf_counter()
                builds = await _drop_indexes(conn, tables, tmo)
                t = add("drop_indexes", t)
                for sql, args in stmts:
                    status = await conn.execute(sql, *args, timeout=tmo)
                    if sql.startswith("DELETE"):
                        t = add("delete", t)
                        continue
                    rows[sql.split(None, 3)[2]] = int(status.rsplit(" ", 1)[-1])
                    t = add("insert", t)
                for build in builds:
                    await conn.execute(build, timeout=tmo)
                t = add("build_indexes", t)
            if vacuum:
                # after the commit, as in rebuild
                for table in tables:
                    await conn.execute(f"VACUUM (ANALYZE) {table}", timeout=tmo)
                add("vacuum", t)

    async def worker() -> None:
        while queue:
            await write(*queue.pop(0))

    tasks = [asyncio.create_task(worker()) for _ in range(connections)]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        # the other connection's statement is cancelled and its transaction rolled back, so
        # nothing runs on after the error is raised
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return {"from": _iso(lo), "to": _iso(hi), "cutoff": _iso(cutoff), "attempts": None,
            "rows": {n: rows[n] for n in TABLES}, "connections": connections,
            "seconds": round(time.perf_counter() - t0, 3), "phases": phases}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
