"""Per-minute rollups per (queue, job type), fed by the ``analytics`` consumer.

Counts by outcome and fixed log2 histograms of run duration and wait time (due -> start), so
percentiles and histograms come from rollups, never from scanning ``jobs``. Each batch is folded
in Python first and written with two set-based upserts.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from jobline.shared.events.outbox import Event
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps

GROUP = "analytics"

#: Event type -> rollup column.
COUNTED = {"jobs.submitted": "submitted", "jobs.started": "started",
           "jobs.completed": "completed", "jobs.failed": "failed", "jobs.retries": "retries",
           "jobs.dead_letter": "dead_letter", "jobs.cancelled": "cancelled"}
COLUMNS = ("submitted", "started", "completed", "failed", "retries", "dead_letter", "cancelled")
MAX_BUCKET = 40


def bucket(ms: int) -> int:
    """Log2 bucket: 0 = [0, 1) ms, b = [2^(b-1), 2^b) ms."""
    if ms < 1:
        return 0
    return min(int(math.log2(ms)) + 1, MAX_BUCKET)


def bucket_bounds(b: int) -> tuple[int, int]:
    return (0, 1) if b == 0 else (2 ** (b - 1), 2 ** b)


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

READ_ROLLUPS = """
SELECT queue_name, job_type, sum(submitted) AS submitted, sum(started) AS started,
       sum(completed) AS completed, sum(failed) AS failed, sum(retries) AS retries,
       sum(dead_letter) AS dead_letter, sum(cancelled) AS cancelled,
       sum(duration_sum_ms) AS duration_sum_ms, sum(wait_sum_ms) AS wait_sum_ms
  FROM job_rollups
 WHERE minute >= $1 AND minute < $2 AND ($3::text IS NULL OR queue_name = $3)
 GROUP BY queue_name, job_type ORDER BY queue_name, job_type
"""

READ_HISTOGRAM = """
SELECT bucket, sum(n) AS n FROM job_rollup_histograms
 WHERE minute >= $1 AND minute < $2 AND metric = $3 AND ($4::text IS NULL OR queue_name = $4)
   AND ($5::text IS NULL OR job_type = $5)
 GROUP BY bucket ORDER BY bucket
"""


async def apply(conn: Any, events: list[Event]) -> None:
    """Fold ``events`` into the rollups (inside the consumer's receipt transaction)."""
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


@dataclass(frozen=True, slots=True)
class Histogram:
    buckets: list[tuple[int, int, int]]  # (lower ms, upper ms, count)

    @property
    def total(self) -> int:
        return sum(n for _, _, n in self.buckets)

    def percentile(self, p: float) -> int | None:
        """Upper bound of the bucket holding the p-th percentile (0 < p <= 100)."""
        total = self.total
        if total == 0:
            return None
        rank = math.ceil(total * p / 100)
        seen = 0
        for _, hi, n in self.buckets:
            seen += n
            if seen >= rank:
                return hi
        return self.buckets[-1][1]


async def summary(deps: Deps, from_ms: int, to_ms: int,
                  queue: str | None = None) -> list[dict[str, Any]]:
    """Totals per (queue, job type) over ``[from, to)`` (whole minutes)."""
    rows = await deps.pool.fetch(READ_ROLLUPS, to_dt(from_ms), to_dt(to_ms), queue)
    return [{k: (int(v) if isinstance(v, int | float) or hasattr(v, "as_integer_ratio")
                 else v) for k, v in dict(r).items()} for r in rows]


async def histogram(deps: Deps, metric: str, from_ms: int, to_ms: int, *,
                    queue: str | None = None, job_type: str | None = None) -> Histogram:
    rows = await deps.pool.fetch(READ_HISTOGRAM, to_dt(from_ms), to_dt(to_ms), metric, queue,
                                 job_type)
    return Histogram([(*bucket_bounds(r["bucket"]), int(r["n"])) for r in rows])


def minute_of(dt: Any) -> int:
    return from_dt(dt) // 60_000 * 60_000
