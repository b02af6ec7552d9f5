"""Per-minute rollups per (queue, job type), folded by the relay (:mod:`jobline.analytics.fold`).

Counts by outcome and histograms (the sketch layout of ``jobline.shared.observe.sketch``) of run duration and wait time (due -> start), so
percentiles and histograms come from rollups, never from scanning ``jobs``. Each batch is folded
in Python first and written with two set-based upserts.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from jobline.shared.events.outbox import Event, Record
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
__all__ = ["COLUMNS", "COUNTED", "MAX_BUCKET", "Histogram", "apply", "apply_records", "bucket",
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

def _upsert_histograms(p: int) -> str:
    """The histogram upsert with its six parameters numbered from ``$p``."""
    return f"""
INSERT INTO job_rollup_histograms AS h (minute, queue_name, job_type, metric, bucket, n)
SELECT * FROM unnest(${p}::timestamptz[], ${p + 1}::text[], ${p + 2}::text[], ${p + 3}::text[],
                     ${p + 4}::smallint[], ${p + 5}::bigint[])
ON CONFLICT (minute, queue_name, job_type, metric, bucket) DO UPDATE SET n = h.n + EXCLUDED.n
"""


UPSERT_HISTOGRAMS = _upsert_histograms(1)
# both in one statement: one round trip per relay pass
UPSERT_BOTH = f"WITH r AS ({UPSERT_ROLLUPS})\n{_upsert_histograms(13)}"

class _Folding:
    """One batch's counts and histogram buckets, keyed by (minute, queue, job type)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[int, str, str], Counter[str]] = {}
        self.hist: Counter[tuple[int, str, str, str, int]] = Counter()

    def event(self, e: Event) -> None:
        col = COUNTED.get(e.type)
        if col is None or e.queue is None or e.job_type is None:
            return
        key = (e.time_ms // 60_000 * 60_000, e.queue, e.job_type)
        c = self.counts.setdefault(key, Counter())
        c[col] += 1
        if e.type == "jobs.completed" and e.duration_ms is not None:
            c["duration_sum_ms"] += e.duration_ms
            self.hist[(*key, "duration", bucket(e.duration_ms))] += 1
        if e.type == "jobs.started" and e.wait_ms is not None:
            c["wait_sum_ms"] += e.wait_ms
            self.hist[(*key, "wait", bucket(e.wait_ms))] += 1

    def statement(self, r: Record) -> None:
        """A statement record as a whole: its events share type, queue, job type and minute
        (migration 0019), so it is one counter increment plus its values' buckets."""
        col = COUNTED.get(r.type)
        if col is None or r.queue is None or r.job_type is None:
            return
        key = (r.time_ms // 60_000 * 60_000, r.queue, r.job_type)
        c = self.counts.setdefault(key, Counter())
        c[col] += r.n
        metric = {"jobs.completed": "duration", "jobs.started": "wait"}.get(r.type)
        if metric is not None and r.millis:
            c[f"{metric}_sum_ms"] += sum(r.millis)
            for b, k in Counter(map(bucket, r.millis)).items():
                self.hist[(*key, metric, b)] += k

    async def write(self, conn: Any) -> None:
        counts, hist = self.counts, self.hist
        if counts and hist:
            keys, hk = sorted(counts), sorted(hist)
            cols = [[counts[k][c] for k in keys] for c in (*COLUMNS, "duration_sum_ms",
                                                            "wait_sum_ms")]
            await conn.execute(UPSERT_BOTH, [to_dt(k[0]) for k in keys], [k[1] for k in keys],
                               [k[2] for k in keys], *cols, [to_dt(k[0]) for k in hk],
                               [k[1] for k in hk], [k[2] for k in hk], [k[3] for k in hk],
                               [k[4] for k in hk], [hist[k] for k in hk])
            return
        if counts:
            keys = sorted(counts)  # a fixed order: concurrent folds cannot deadlock on rows
            cols = [[counts[k][c] for k in keys] for c in (*COLUMNS, "duration_sum_ms",
                                                            "wait_sum_ms")]
            await conn.execute(UPSERT_ROLLUPS, [to_dt(k[0]) for k in keys],
                               [k[1] for k in keys], [k[2] for k in keys], *cols)
        if hist:
            hk = sorted(hist)
            await conn.execute(UPSERT_HISTOGRAMS, [to_dt(k[0]) for k in hk], [k[1] for k in hk],
                               [k[2] for k in hk], [k[3] for k in hk], [k[4] for k in hk],
                               [hist[k] for k in hk])


async def apply(conn: Any, events: list[Event]) -> None:
    """Fold ``events`` into the rollups (on ``conn``, in the caller's transaction)."""
    f = _Folding()
    for e in events:
        f.event(e)
    await f.write(conn)


async def apply_records(conn: Any, records: list[Record]) -> None:
    """Fold the relay's ``records`` into the rollups (inside the relay's cursor transaction);
    statement records are folded without expanding them into events."""
    f = _Folding()
    for r in records:
        if r.event is not None:
            f.event(r.event)
        else:
            f.statement(r)
    await f.write(conn)
