"""Per-minute rollups per (queue, job type), folded by the relay (:mod:`jobline.analytics.fold`).

Counts by outcome and fixed log2 histograms of run duration and wait time (due -> start), so
percentiles and histograms come from rollups, never from scanning ``jobs``. Each batch is folded
in Python first and written with two set-based upserts.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from jobline.shared.events.outbox import Event
from jobline.shared.observe.rollups import (
    MAX_BUCKET,
    Histogram,
    bucket,
    bucket_bounds,
    histogram,
    minute_of,
    summary,
)
from jobline.shared.platform.clock import to_dt

# The reads and the bucket layout live in jobline.shared.observe.rollups (monitoring reads them
# without importing analytics); re-exported for the consumer's callers.
__all__ = ["COLUMNS", "COUNTED", "MAX_BUCKET", "Histogram", "apply", "bucket",
           "bucket_bounds", "histogram", "minute_of", "summary"]

#: Event type -> rollup column.
COUNTED = {"jobs.submitted": "submitted", "jobs.started": "started",
           "jobs.completed": "completed", "jobs.failed": "failed", "jobs.retries": "retries",
           "jobs.dead_letter": "dead_letter", "jobs.cancelled": "cancelled"}
COLUMNS = ("submitted", "started", "completed", "failed", "retries", "dead_letter", "cancelled")

UPSERT_ROLLUPS = """
INSERT INTO job_rollups AS r (minute, queue_name, job_type, submitted, started, completed, failed,
                              retries, dead_letter, cancelled, duration_sum_ms, wait_sum_ms)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
                     $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],
                     $11::bigint[], $12::bigint[])
ON CONFLICT (minute, queue_name, job_type) DO UPDATE SET
    submitted = r.submitted + EXCLUDED.submitted, started = r.started + EXCLUDED.started,
    completed = r.completed + EXCLUDED.completed, failed = r.failed + EXCLUDED.failed,
    retries = r.retries + EXCLUDED.retries, dead_letter = r.dead_letter + EXCLUDED.dead_letter,
    cancelled = r.cancelled + EXCLUDED.cancelled,
    duration_sum_ms = r.duration_sum_ms + EXCLUDED.duration_sum_ms,
    wait_sum_ms = r.wait_sum_ms + EXCLUDED.wait_sum_ms
"""

UPSERT_HISTOGRAMS = """
INSERT INTO job_rollup_histograms AS h (minute, queue_name, job_type, metric, bucket, n)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::smallint[],
                     $6::bigint[])
ON CONFLICT (minute, queue_name, job_type, metric, bucket) DO UPDATE SET n = h.n + EXCLUDED.n
"""

async def apply(conn: Any, events: list[Event]) -> None:
    """Fold ``events`` into the rollups (inside the relay's cursor transaction)."""
    counts: dict[tuple[int, str, str], Counter[str]] = {}
    hist: Counter[tuple[int, str, str, str, int]] = Counter()
    for e in events:
        col = COUNTED.get(e.type)
        if col is None or e.queue is None or e.job_type is None:
            continue
        key = (e.time_ms // 60_000 * 60_000, e.queue, e.job_type)
        c = counts.setdefault(key, Counter())
        c[col] += 1
        if e.type == "jobs.completed" and e.duration_ms is not None:
            c["duration_sum_ms"] += e.duration_ms
            hist[(*key, "duration", bucket(e.duration_ms))] += 1
        if e.type == "jobs.started" and e.wait_ms is not None:
            c["wait_sum_ms"] += e.wait_ms
            hist[(*key, "wait", bucket(e.wait_ms))] += 1
    if counts:
        keys = sorted(counts)  # a fixed order: concurrent consumers cannot deadlock on rows
        cols = [[counts[k][c] for k in keys] for c in (*COLUMNS, "duration_sum_ms",
                                                        "wait_sum_ms")]
        await conn.execute(UPSERT_ROLLUPS, [to_dt(k[0]) for k in keys], [k[1] for k in keys],
                           [k[2] for k in keys], *cols)
    if hist:
        hk = sorted(hist)
        await conn.execute(UPSERT_HISTOGRAMS, [to_dt(k[0]) for k in hk], [k[1] for k in hk],
                           [k[2] for k in hk], [k[3] for k in hk], [k[4] for k in hk],
                           [hist[k] for k in hk])
