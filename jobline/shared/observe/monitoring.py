"""Monitoring reads shared by GraphQL, the REST ``/api/v1/metrics/*`` endpoints and Prometheus.

One implementation per figure, so the three shells cannot disagree. Figures over time (counts,
throughput, duration and wait distributions) come from the per-minute rollups the analytics
consumer maintains (``job_rollups``, ``job_rollup_histograms``); live depth comes from Redis;
nothing here counts rows of ``jobs``. The exceptions are bounded index reads: the oldest pending
job per queue (one index probe per queue) and the Gantt timeline, which reads jobs created in a
time window through the primary key (ids are UUIDv7, so a time window is an id range) and is
paginated.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from jobline.shared.observe import rollups
from jobline.shared.observe.workers import list_workers
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import ValidationFailed
from jobline.shared.platform.ids import uuid7_floor
from jobline.shared.platform.redis_client import UNAVAILABLE_ERRORS

#: Throughput and failure rate in queue metrics cover this much recent time.
RECENT_MS = 15 * 60_000
#: A queue whose oldest ready job waited longer than this is "lagging".
LAGGING_AGE_MS = 5 * 60_000
#: A queue with more than this share of failed attempts recently is "failing".
FAILING_RATE = 0.5
MAX_TIMELINE = 1000
MAX_SERIES_MINUTES = 7 * 24 * 60

OLDEST_PENDING = """
SELECT q.name AS queue_name,
       (SELECT scheduled_for FROM jobs
         WHERE queue_name = q.name AND status = 'pending'
         ORDER BY scheduled_for LIMIT 1) AS oldest
  FROM unnest($1::text[]) AS q(name)
"""

# Oldest-first keyset over the primary key of the window's partitions; the id bounds are what
# make this an index range scan instead of a scan of jobs.
TIMELINE = """
SELECT id, queue_name, job_type, status, created_at, started_at, completed_at, attempts,
       worker_id
  FROM jobs
 WHERE id >= $1 AND id < $2 AND ($3::text IS NULL OR queue_name = $3)
 ORDER BY id
 LIMIT $4
"""

# The Gantt zoomed out: started jobs per lane and time bucket. The same id range as TIMELINE
# (jobs created in the window: an index range over the primary key, never all jobs); the start
# bounds keep every bucket inside the window.
TIMELINE_DENSITY = """
SELECT CASE WHEN $4 THEN coalesce(worker_id, '(no worker)') ELSE queue_name END AS lane,
       floor((extract(epoch FROM started_at) * 1000 - $5) / $6)::int AS bucket,
       count(*) AS jobs,
       count(*) FILTER (WHERE status IN ('failed', 'dead_letter')) AS failed
  FROM jobs
 WHERE id >= $1 AND id < $2 AND ($3::text IS NULL OR queue_name = $3)
   AND started_at >= to_timestamp($5 / 1000.0) AND started_at < to_timestamp($7 / 1000.0)
 GROUP BY 1, 2
 ORDER BY 1, 2
"""

SERIES = """
SELECT minute, sum(submitted) AS submitted, sum(started) AS started,
       sum(completed) AS completed, sum(failed) AS failed, sum(retries) AS retries,
       sum(dead_letter) AS dead_letter, sum(cancelled) AS cancelled,
       sum(duration_sum_ms) AS duration_sum_ms
  FROM job_rollups
 WHERE minute >= $1 AND minute < $2 AND ($3::text IS NULL OR queue_name = $3)
 GROUP BY minute ORDER BY minute
"""

# All-time totals from the day grain: the minute rows are kept only JOBLINE_ROLLUP_MINUTE_DAYS
# (a Prometheus counter summed over them would fall as they expire), and a day row per (queue,
# type) is 1,440 times fewer rows to sum on every scrape. The day rows hold the minutes before
# the compaction watermark (migration 0030); the minutes from it on are added, in the same
# snapshot, so a counter never lags the live fold.
_COMPACTED = "(SELECT compacted_through FROM rollup_watermark WHERE id = 1)"
_TOTAL_COLS = ("submitted", "started", "completed", "failed", "retries", "dead_letter",
               "cancelled", "duration_sum_ms", "wait_sum_ms")
TOTALS = (
    "SELECT queue_name, job_type, "
    + ", ".join(f"sum({c}) AS {c}" for c in _TOTAL_COLS)
    + "\n  FROM (SELECT queue_name, job_type, " + ", ".join(_TOTAL_COLS) + " FROM job_rollups_day"
    + "\n        UNION ALL SELECT queue_name, job_type, " + ", ".join(_TOTAL_COLS)
    + f" FROM job_rollups WHERE minute >= {_COMPACTED}) t"
    + "\n GROUP BY queue_name, job_type")

HISTOGRAM_TOTALS = f"""
SELECT queue_name, job_type, metric, bucket, sum(n) AS n
  FROM (SELECT queue_name, job_type, metric, bucket, n FROM job_rollup_histograms_day
        UNION ALL SELECT queue_name, job_type, metric, bucket, n FROM job_rollup_histograms
                   WHERE minute >= {_COMPACTED}) t
 GROUP BY queue_name, job_type, metric, bucket ORDER BY queue_name, job_type, metric, bucket
"""

QUEUE_CONTROLS = "SELECT name, paused, max_in_flight, rate_limit, rate_window_ms FROM queues"


def check_window(from_ms: int | None, to_ms: int | None, now_ms: int,
                 default_ms: int = 3_600_000) -> tuple[int, int]:
    to = now_ms if to_ms is None else to_ms
    frm = to - default_ms if from_ms is None else from_ms
    if frm >= to:
        raise ValidationFailed("to", "must be after from")
    if to - frm > MAX_SERIES_MINUTES * 60_000:
        raise ValidationFailed("from", "the window is at most 7 days")
    return frm, to


async def queue_metrics(deps: Deps, queue: str | None = None) -> list[dict[str, Any]]:
    """Per queue: live depth (Redis), controls, recent throughput/failure rate (rollups), the
    oldest pending job's age and a health verdict."""
    now = deps.clock.now_ms()
    controls = {r["name"]: r for r in await deps.pool.fetch(QUEUE_CONTROLS)}
    start = now - RECENT_MS
    recent: dict[str, dict[str, int]] = {}
    for r in await rollups.summary(deps, start // 60_000 * 60_000, now + 60_000, queue):
        acc = recent.setdefault(r["queue_name"], {})
        for k in ("submitted", "completed", "failed", "dead_letter", "retries",
                  "duration_sum_ms"):
            acc[k] = acc.get(k, 0) + int(r[k])
    names = set(controls) | set(recent)
    depth: dict[str, dict[str, int]] = {}
    redis_ok = True
    try:
        names |= set(await deps.dispatch.known_queues())
        if queue is not None:
            names = {queue}
        depth = await deps.dispatch.depth(sorted(names))
    except UNAVAILABLE_ERRORS:
        redis_ok = False
        if queue is not None:
            names = {queue}
    ordered = sorted(names)
    oldest = {r["queue_name"]: r["oldest"]
              for r in await deps.pool.fetch(OLDEST_PENDING, ordered)}
    out = []
    for q in ordered:
        c = controls.get(q)
        rc = recent.get(q, {})
        d = depth.get(q, {})
        age = max(0, now - from_dt(oldest[q])) if oldest.get(q) is not None else 0
        attempts = rc.get("completed", 0) + rc.get("failed", 0)
        failure_rate = rc.get("failed", 0) / attempts if attempts else 0.0
        paused = bool(c["paused"]) if c is not None else False
        health = ("paused" if paused else "unknown" if not redis_ok
                  else "failing" if attempts >= 10 and failure_rate > FAILING_RATE
                  else "lagging" if age > LAGGING_AGE_MS else "healthy")
        minutes = RECENT_MS / 60_000
        out.append({
            "name": q, "ready": d.get("ready", 0), "delayed": d.get("delayed", 0),
            "leased": d.get("leased", 0), "paused": paused,
            "maxInFlight": c["max_in_flight"] if c is not None else None,
            "rateLimit": ({"limit": c["rate_limit"], "windowMs": c["rate_window_ms"]}
                          if c is not None and c["rate_limit"] is not None else None),
            "oldestPendingAgeMs": age,
            "throughputPerMin": round(rc.get("completed", 0) / minutes, 3),
            "failedPerMin": round(rc.get("failed", 0) / minutes, 3),
            "failureRate": round(failure_rate, 4),
            "avgDurationMs": (round(rc.get("duration_sum_ms", 0) / rc["completed"], 1)
                              if rc.get("completed") else None),
            "health": health,
        })
    return out


async def worker_metrics(deps: Deps) -> list[dict[str, Any]]:
    """Live workers with status (busy/idle) and uptime."""
    now = deps.clock.now_ms()
    out = []
    for w in await list_workers(deps):
        running = int(w.get("running", 0))
        out.append({
            "id": w["id"], "queues": list(w.get("queues", [])),
            "concurrency": int(w.get("concurrency", 0)), "host": w.get("host"),
            "pid": w.get("pid"), "status": "busy" if running else "idle", "running": running,
            "currentJobs": list(w.get("currentJobs", [])),
            "startedMs": w.get("startedMs"), "lastSeenMs": w.get("lastSeenMs"),
            "uptimeMs": max(0, now - int(w["startedMs"])) if w.get("startedMs") else None,
            "processed": int(w.get("processed", 0)), "failed": int(w.get("failed", 0)),
            # from the worker's last heartbeat; absent from workers older than the fields
            "cpuPercent": w.get("cpuPercent"), "rssBytes": w.get("rssBytes"),
        })
    return out


@dataclass(frozen=True, slots=True)
class TimelinePage:
    items: list[dict[str, Any]]
    next_cursor: str | None


MAX_DENSITY_BUCKETS = 2000


async def timeline_density(deps: Deps, from_ms: int | None, to_ms: int | None, *,
                           queue: str | None = None, by_worker: bool = True,
                           buckets: int = 200) -> dict[str, Any]:
    """The Gantt's aggregate view: jobs created in ``[from, to)`` that started in it, counted
    per lane (worker or queue) and per ``bucketMs`` slice of the window, with how many failed.

    Invariant: bucket ``i`` covers ``[fromMs + i * bucketMs, fromMs + (i + 1) * bucketMs)``,
    ``0 <= i < buckets``; cells with no job are absent."""
    frm, to = check_window(from_ms, to_ms, deps.clock.now_ms())
    if not 1 <= buckets <= MAX_DENSITY_BUCKETS:
        raise ValidationFailed("buckets", f"must be 1-{MAX_DENSITY_BUCKETS}")
    width = max(1, -(-(to - frm) // buckets))  # ceil: the buckets cover the whole window
    rows = await deps.pool.fetch(TIMELINE_DENSITY, uuid7_floor(frm), uuid7_floor(to), queue,
                                 by_worker, frm, width, to)
    return {"fromMs": frm, "toMs": to, "bucketMs": width,
            "cells": [{"lane": r["lane"], "bucket": r["bucket"], "jobs": r["jobs"],
                       "failed": r["failed"]} for r in rows]}


async def job_timeline(deps: Deps, from_ms: int | None, to_ms: int | None, *,
                       queue: str | None = None, limit: int = 500,
                       cursor: str | None = None) -> TimelinePage:
    """Jobs created in ``[from, to)`` for a Gantt chart, oldest first, ``limit`` at a time."""
    frm, to = check_window(from_ms, to_ms, deps.clock.now_ms())
    if not 1 <= limit <= MAX_TIMELINE:
        raise ValidationFailed("limit", f"must be 1-{MAX_TIMELINE}")
    lo = uuid7_floor(frm)
    if cursor:
        try:
            after = uuid.UUID(cursor)
        except ValueError:
            raise ValidationFailed("cursor", "invalid cursor") from None
        # strictly after the cursor: the next id up
        lo = max(lo, uuid.UUID(int=after.int + 1))
    rows = await deps.pool.fetch(TIMELINE, lo, uuid7_floor(to), queue, limit)
    items = []
    for r in rows:
        start = from_dt(r["started_at"]) if r["started_at"] is not None else None
        end = from_dt(r["completed_at"]) if r["completed_at"] is not None else None
        items.append({
            "id": str(r["id"]), "queue": r["queue_name"], "jobType": r["job_type"],
            "status": r["status"], "createdMs": from_dt(r["created_at"]), "startMs": start,
            "endMs": end, "durationMs": end - start if start is not None and end is not None
            else None, "attempts": r["attempts"], "workerId": r["worker_id"]})
    nxt = items[-1]["id"] if len(items) == limit else None
    return TimelinePage(items, nxt)


async def duration_histogram(deps: Deps, *, queue: str | None = None,
                             job_type: str | None = None, metric: str = "duration",
                             from_ms: int | None = None, to_ms: int | None = None
                             ) -> dict[str, Any]:
    if metric not in ("duration", "wait"):
        raise ValidationFailed("metric", "must be duration or wait")
    frm, to = check_window(from_ms, to_ms, deps.clock.now_ms(), 24 * 3_600_000)
    h = await rollups.histogram(deps, metric, frm // 60_000 * 60_000, to, queue=queue,
                                job_type=job_type)
    return {"metric": metric, "queue": queue, "jobType": job_type, "fromMs": frm, "toMs": to,
            "total": h.total,
            "buckets": [{"lowerMs": lo, "upperMs": hi, "count": n} for lo, hi, n in h.buckets],
            "p50Ms": h.percentile(50), "p95Ms": h.percentile(95), "p99Ms": h.percentile(99)}


async def throughput_series(deps: Deps, *, queue: str | None = None,
                            from_ms: int | None = None, to_ms: int | None = None
                            ) -> list[dict[str, Any]]:
    """One point per minute that has any activity (minutes without events are absent)."""
    frm, to = check_window(from_ms, to_ms, deps.clock.now_ms())
    rows = await deps.pool.fetch(SERIES, to_dt(frm // 60_000 * 60_000), to_dt(to), queue)
    return [{"minuteMs": from_dt(r["minute"]), "submitted": int(r["submitted"]),
             "started": int(r["started"]), "completed": int(r["completed"]),
             "failed": int(r["failed"]), "retries": int(r["retries"]),
             "deadLetter": int(r["dead_letter"]), "cancelled": int(r["cancelled"]),
             "avgDurationMs": (round(int(r["duration_sum_ms"]) / int(r["completed"]), 1)
                               if r["completed"] else None)} for r in rows]


async def totals(deps: Deps) -> list[dict[str, Any]]:
    """All-time counts per (queue, job type) from the rollups (Prometheus counters)."""
    return [{k: (int(v) if k not in ("queue_name", "job_type") else v)
             for k, v in dict(r).items()} for r in await deps.pool.fetch(TOTALS)]


async def histogram_totals(deps: Deps) -> dict[tuple[str, str, str], list[tuple[int, int]]]:
    """All-time (bucket, count) per (queue, job type, metric)."""
    out: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
    for r in await deps.pool.fetch(HISTOGRAM_TOTALS):
        out.setdefault((r["queue_name"], r["job_type"], r["metric"]), []).append(
            (int(r["bucket"]), int(r["n"])))
    return out
