"""The rollups' histogram layout: Python's bucket() and SQL's jobline_bucket() agree exactly, and
a merged percentile stays within the promised relative error."""

from __future__ import annotations

import math
import random

import asyncpg

from jobline.shared.observe import sketch


async def test_sql_and_python_buckets_agree_at_every_boundary(database_url: str) -> None:
    probes = sorted({v for t in sketch.THRESHOLDS for v in (t - 1, t, t + 1)} | {-5, 0})
    conn = await asyncpg.connect(database_url)
    try:
        got = await conn.fetch("SELECT v, jobline_bucket(v) AS b FROM unnest($1::bigint[]) v",
                               probes)
    finally:
        await conn.close()
    assert len(got) == len(probes)
    for r in got:
        assert r["b"] == sketch.bucket(r["v"]), r["v"]


def test_a_merged_percentile_is_within_two_percent_of_the_exact_one() -> None:
    rng = random.Random(7)
    values = [int(rng.lognormvariate(6, 2)) + 1 for _ in range(20_000)]
    # merge from three "rollup rows", as a read over minutes does
    parts = [values[i::3] for i in range(3)]
    counts = [(sketch.bucket(v), 1) for part in parts for v in part]
    exact = sorted(values)
    for p in (50, 90, 95, 99, 99.9):
        want = exact[math.ceil(len(exact) * p / 100) - 1]
        got = sketch.percentile(counts, p)
        assert got is not None and abs(got - want) <= 0.02 * want, (p, got, want)


def test_every_bucket_spans_at_most_four_percent() -> None:
    for b in range(1, sketch.MAX_BUCKET):
        lo, hi = sketch.bounds(b)
        assert hi - 1 <= lo * 1.04
    assert sketch.percentile([], 50) is None
