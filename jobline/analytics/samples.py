"""Gauges sampled once a minute by the scheduler into ``analytics_samples``, their hourly
compaction into ``analytics_samples_hour``, and the retention of rollups, samples and raw jobs
(docs/analytics.md, "Samples" and "Retention").

Every read here is bounded and never scans ``jobs``: counts per (queue, status) come from the
folded counters (migration 0015), the oldest pending job from one index probe per queue, workers
from the Redis registry (their heartbeats carry CPU and RSS), sizes from the catalog. Writing a
minute twice (two schedulers, a retried tick) overwrites it with the later reading: samples are
idempotent, so any number of schedulers may run.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jobline.shared.core import counts
from jobline.shared.observe.monitoring import OLDEST_PENDING
from jobline.shared.observe.workers import list_workers
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.redis_client import UNAVAILABLE_ERRORS, used_memory

log = logging.getLogger("jobline.analytics.samples")

#: How often the scheduler samples (one row per series and minute).
SAMPLE_EVERY_S = 60.0
#: How often the scheduler applies retention.
RETENTION_EVERY_S = 3_600.0
#: Hour and day rollups and hour samples are kept this long.
LONG_RETENTION = "13 months"
#: Tables whose size is sampled (pg.table_bytes; partitions summed).
TABLES = ("jobs", "job_attempts", "job_events", "job_rollups", "job_rollup_histograms",
          "job_rollups_hour", "job_rollup_histograms_hour", "job_rollups_day",
          "job_rollup_histograms_day", "analytics_samples")
#: Components whose health is recorded (health.up; ``api`` is recorded by the API itself).
COMPONENTS = ("postgres", "redis", "scheduler", "workers")

UPSERT_SAMPLES = """
INSERT INTO analytics_samples AS s (metric, subject, minute, value)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::float8[])
ON CONFLICT (metric, subject, minute) DO UPDATE SET value = EXCLUDED.value
"""

# The hours [$1, $2) recomputed from their minute samples (idempotent: the hour row is replaced).
COMPACT = """
INSERT INTO analytics_samples_hour AS h (metric, subject, at, avg, min, max, last, n)
SELECT metric, subject, date_trunc('hour', minute, 'UTC'), avg(value), min(value), max(value),
       (array_agg(value ORDER BY minute DESC))[1], count(*)
  FROM analytics_samples WHERE minute >= $1 AND minute < $2
 GROUP BY metric, subject, date_trunc('hour', minute, 'UTC')
ON CONFLICT (metric, subject, at) DO UPDATE SET
    avg = EXCLUDED.avg, min = EXCLUDED.min, max = EXCLUDED.max, last = EXCLUDED.last,
    n = EXCLUDED.n
"""

TABLE_BYTES = """
SELECT t AS name, (SELECT coalesce(sum(pg_total_relation_size(p.relid)), 0)
                     FROM pg_partition_tree(t::regclass) AS p) AS bytes
  FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NOT NULL
"""
DATABASE_BYTES = "SELECT pg_database_size(current_database())"
CRASHES = "SELECT count(*) FROM worker_crashes WHERE at >= $1 AND at < $2"
OUTBOX_LAG = """
SELECT coalesce(sum(coalesce(n, 1)), 0)::bigint AS outbox,
       coalesce(pg_sequence_last_value('job_events_seq'), 0)
         - coalesce((SELECT seq FROM consumer_watermarks
                      WHERE consumer = 'relay.fold' AND part = ''), 0) AS fold
  FROM job_events WHERE seq > (SELECT published_through FROM event_relay_state WHERE id = 1)
"""

MINUTE_TABLES = ("job_rollups", "job_rollup_histograms", "job_rollup_errors",
                 "job_rollup_attempts")
LONG_TABLES = tuple(t + s for s in ("_hour", "_day") for t in MINUTE_TABLES)

#: Monthly partitions of jobs (and their job_attempts twins, dropped with them).
PARTITIONS = r"""
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'jobs'::regclass AND c.relname ~ '^jobs_p[0-9]{6}$' ORDER BY 1
"""


@dataclass(slots=True)
class Samples:
    """One minute's readings: (metric, subject) -> value."""

    minute_ms: int
    values: dict[tuple[str, str], float] = field(default_factory=dict)

    def put(self, metric: str, subject: str, value: float | int | None) -> None:
        if value is not None:
            self.values[(metric, subject)] = float(value)


async def collect(deps: Deps) -> Samples:
    """Read every gauge of the contract for the current minute (docs/analytics.md)."""
    now = deps.clock.now_ms()
    s = Samples(now // 60_000 * 60_000)
    s.put("health.up", "scheduler", 1)
    # PostgreSQL: queue counts (folded counters, no scan of jobs), the oldest pending job per
    # queue (an index probe each), crashes, sizes, the outbox lag
    try:
        by_queue = await counts.queue_counts(deps)
        for q, c in by_queue.items():
            s.put("queue.depth", q, c.get("pending", 0))
            s.put("queue.scheduled", q, c.get("scheduled", 0))
            s.put("queue.processing", q, c.get("processing", 0))
        names = sorted(by_queue)
        for r in await deps.pool.fetch(OLDEST_PENDING, names):
            oldest = r["oldest"]
            s.put("queue.oldest_pending_ms", r["queue_name"],
                  max(0, now - from_dt(oldest)) if oldest is not None else 0)
        s.put("workers.crashes", "*", await deps.pool.fetchval(
            CRASHES, to_dt(s.minute_ms - 60_000), to_dt(s.minute_ms)))
        for r in await deps.pool.fetch(TABLE_BYTES, list(TABLES)):
            s.put("pg.table_bytes", r["name"], r["bytes"])
        s.put("pg.database_bytes", "*", await deps.pool.fetchval(DATABASE_BYTES))
        lag = await deps.pool.fetchrow(OUTBOX_LAG)
        assert lag is not None
        s.put("events.lag", "outbox", lag["outbox"])
        s.put("events.lag", "relay.fold", max(0, int(lag["fold"])))
        s.put("health.up", "postgres", 1)
    except Exception as e:  # recorded as down; the write below fails too if it really is
        log.warning("samples: PostgreSQL readings failed: %s", e)
        s.put("health.up", "postgres", 0)
    # Redis: the worker registry (heartbeats carry CPU and RSS) and INFO memory
    try:
        workers = await list_workers(deps)
        groups: dict[str, list[dict[str, Any]]] = {"*": workers}
        for w in workers:
            groups.setdefault(f"group:{w.get('group') or 'default'}", []).append(w)
        for subject, ws in groups.items():
            s.put("workers.count", subject, len(ws))
            s.put("workers.slots", subject, sum(int(w.get("concurrency") or 0) for w in ws))
            s.put("workers.busy", subject, sum(int(w.get("running") or 0) for w in ws))
        for w in workers:
            s.put("worker.cpu_pct", str(w["id"]), w.get("cpuPercent"))
            s.put("worker.rss_bytes", str(w["id"]), w.get("rssBytes"))
        s.put("health.up", "workers", 1 if workers else 0)
        s.put("redis.memory_bytes", "*", await used_memory(deps.dispatch.r))
        s.put("health.up", "redis", 1)
    except UNAVAILABLE_ERRORS as e:
        log.warning("samples: Redis readings failed: %s", e)
        s.put("health.up", "redis", 0)
    return s


async def write(deps: Deps, s: Samples) -> int:
    keys = sorted(s.values)
    if not keys:
        return 0
    minute = to_dt(s.minute_ms)
    await deps.pool.execute(UPSERT_SAMPLES, [k[0] for k in keys], [k[1] for k in keys],
                            [minute] * len(keys), [s.values[k] for k in keys])
    return len(keys)


async def compact(deps: Deps, now_ms: int | None = None) -> int:
    """Recompute the hour rows of the current and the previous hour from their minute samples
    (the previous one catches a minute written after its last compaction)."""
    now = deps.clock.now_ms() if now_ms is None else now_ms
    hour = now // 3_600_000 * 3_600_000
    status = await deps.pool.execute(COMPACT, to_dt(hour - 3_600_000), to_dt(hour + 3_600_000))
    return int(status.rsplit(" ", 1)[-1])


async def sample(deps: Deps) -> int:
    """One scheduler tick: read, write, compact. Returns the samples written."""
    n = await write(deps, await collect(deps))
    await compact(deps)
    return n


def _partition_end_ms(name: str) -> int:
    """The exclusive end of monthly partition ``jobs_pYYYYMM`` (UTC)."""
    m = re.fullmatch(r"jobs_p(\d{4})(\d{2})", name)
    assert m is not None
    y, mo = int(m.group(1)), int(m.group(2))
    y, mo = (y + 1, 1) if mo == 12 else (y, mo + 1)
    return int(datetime(y, mo, 1, tzinfo=UTC).timestamp() * 1000)


async def retention(deps: Deps) -> dict[str, Any]:
    """Delete minute rollups and minute samples older than ``rollup_minute_days``, hour/day
    rollups and hour samples older than 13 months, and drop the monthly ``jobs`` partitions
    (with their ``job_attempts`` twins) that ended more than ``retention_days`` ago and hold
    only final jobs (through ``jobline_drop_jobs_partition``, which keeps the queue counts
    exact). Returns what was removed."""
    now = deps.clock.now_ms()
    s = deps.settings
    minute_cut = to_dt(now - s.rollup_minute_days * 86_400_000)
    out: dict[str, Any] = {"deleted": {}, "dropped": []}
    async with deps.pool.acquire() as conn:
        for t in MINUTE_TABLES:
            # never a minute the compaction has not summed into the hour/day rows yet (from the
            # watermark's hour on: query.decompose reads those minutes)
            st = await conn.execute(
                f"DELETE FROM {t} WHERE minute < least($1, (SELECT date_trunc('hour', "
                "compacted_through, 'UTC') FROM rollup_watermark WHERE id = 1))", minute_cut)
            out["deleted"][t] = int(st.rsplit(" ", 1)[-1])
        st = await conn.execute("DELETE FROM analytics_samples WHERE minute < $1", minute_cut)
        out["deleted"]["analytics_samples"] = int(st.rsplit(" ", 1)[-1])
        long_cut = await conn.fetchval(
            f"SELECT $1::timestamptz - interval '{LONG_RETENTION}'", to_dt(now))
        for t in (*LONG_TABLES, "analytics_samples_hour"):
            st = await conn.execute(f"DELETE FROM {t} WHERE at < $1", long_cut)
            out["deleted"][t] = int(st.rsplit(" ", 1)[-1])
        raw_cut = now - s.retention_days * 86_400_000
        for (name,) in await conn.fetch(PARTITIONS):
            if _partition_end_ms(name) > raw_cut:
                continue
            # only final jobs: a pending or running job is never dropped with its month
            live = await conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM {name} WHERE status IN "
                "('waiting', 'pending', 'scheduled', 'processing'))")
            if live:
                log.warning("retention: %s is past JOBLINE_RETENTION_DAYS but holds unfinished "
                            "jobs; kept", name)
                continue
            async with conn.transaction():
                gone = await conn.fetchval("SELECT jobline_drop_jobs_partition($1)", name)
            out["dropped"].append({"partition": name, "jobs": int(gone)})
            log.info("retention: dropped %s (%d jobs)", name, gone)
    return out
