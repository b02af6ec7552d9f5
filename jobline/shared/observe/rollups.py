"""Reads of the per-minute rollups (``job_rollups``, ``job_rollup_histograms``).

The analytics consumer (``jobline.analytics.rollups``) writes them; monitoring (REST, GraphQL,
Prometheus) reads them through here. The histogram bucket layout is the contract between the two,
so it is defined here, on the side every process imports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from jobline.shared.observe import sketch
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps

# The bucket layout is the sketch's (migration 0022): < 2% relative error per bucket.
MAX_BUCKET = sketch.MAX_BUCKET
bucket = sketch.bucket
bucket_bounds = sketch.bounds


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


@dataclass(frozen=True, slots=True)
class Histogram:
    buckets: list[tuple[int, int, int]]  # (lower ms, upper ms, count)

    @property
    def total(self) -> int:
        return sum(n for _, _, n in self.buckets)

    def percentile(self, p: float) -> int | None:
        """The p-th percentile (0 < p <= 100), nearest rank, as its bucket's representative
        (within 2% of the exact value; :mod:`jobline.shared.observe.sketch`)."""
        total = self.total
        if total == 0:
            return None
        rank = math.ceil(total * p / 100)
        seen = 0
        for lo, _, n in self.buckets:
            seen += n
            if seen >= rank:
                return round(sketch.representative(sketch.bucket(lo)))
        return round(sketch.representative(sketch.bucket(self.buckets[-1][0])))


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
