"""What dependencies and batches cost on the completion path, and how a 100k-job batch behaves.

    python bench/deps_batches.py                 # 100k-job batch
    python bench/deps_batches.py --batch 5000    # smaller

Figures (written to ``bench/results/deps_batches.{json,md}``):

- ``complete`` throughput at 1 and 500 outcomes per call: the code before dependencies (one
  statement + Redis lease release) against ``jobs.complete`` now, for plain jobs (fast path,
  still one statement) and for batch jobs (a transaction with the batch bump).
- A batch of ``--batch`` jobs: create time, completion time of the first and of the last 2,000
  jobs (equal if a completion's cost does not grow with the batch), and GET time.

Uses DATABASE_URL/REDIS_URL if set, else embedded PostgreSQL + Valkey (durable defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import orjson
import stores

from jobline.shared.core import jobs, sql
from jobline.shared.core.models import JobSpec, Outcome
from jobline.shared.flow import batches
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect

RESULTS = Path(__file__).parent / "results"


def spec(i: int) -> JobSpec:
    return JobSpec(queue="bench", job_type="demo.noop", payload={"i": i})


async def claim_n(deps: Deps, n: int) -> list[Any]:
    out: list[Any] = []
    while len(out) < n:
        got = await jobs.claim(deps, "w", ["bench"], min(5000, n - len(out)))
        if not got:
            break
        out += got
    return out


async def bare_complete(deps: Deps, outcomes: list[Outcome]) -> None:
    """What ``jobs.complete`` did before dependencies: one statement, then the Redis lease."""
    now = deps.clock.now_ms()
    rows = await deps.pool.fetch(sql.COMPLETE_JOBS, [o.id for o in outcomes],
                                 [o.token for o in outcomes],
                                 [orjson.dumps(None).decode() for _ in outcomes],
                                 [to_dt(now) for _ in outcomes], False)
    await deps.dispatch.release_leases([(r["queue_name"], r["id"]) for r in rows])


async def complete_rate(deps: Deps, n: int, per_call: int, bare: bool,
                        in_batch: bool = False) -> float:
    if in_batch:  # the transactional path: every completion bumps its batch
        await batches.create_batch(deps, "rate", [spec(i) for i in range(n)])
    else:
        await jobs.submit_many(deps, [spec(i) for i in range(n)])
    claimed = await claim_n(deps, n)
    outs = [Outcome(c.id, c.token, ok=True) for c in claimed]
    t0 = time.perf_counter()
    for i in range(0, len(outs), per_call):
        part = outs[i:i + per_call]
        if bare:
            await bare_complete(deps, part)
        else:
            await jobs.complete(deps, part)
    return len(outs) / (time.perf_counter() - t0)


async def big_batch(deps: Deps, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    # one call for the whole batch (a REST request holds at most max_bulk_jobs; the core any)
    t0 = time.perf_counter()
    big = await batches.create_batch(deps, "big", [spec(i) for i in range(n)])
    out["create_batch_s"] = time.perf_counter() - t0
    await deps.pool.execute("ANALYZE jobs")
    t0 = time.perf_counter()
    await batches.get_batch(deps, big.id)
    out["get_batch_at_start_ms"] = (time.perf_counter() - t0) * 1000
    ids = {r.submitted.id for r in big.jobs}
    claimed = [c for c in await claim_n(deps, n) if c.id in ids]
    window = min(2000, n // 2)
    first, middle, last = claimed[:window], claimed[window:-window], claimed[-window:]

    async def complete_all(cs: list[Any]) -> float:
        t = time.perf_counter()
        for i in range(0, len(cs), 100):
            await jobs.complete(deps, [Outcome(c.id, c.token, ok=True) for c in cs[i:i + 100]])
        return time.perf_counter() - t

    out["complete_first_2000_s"] = await complete_all(first)
    for i in range(0, len(middle), 5000):
        await jobs.complete(deps, [Outcome(c.id, c.token, ok=True) for c in middle[i:i + 5000]])
    out["complete_last_2000_s"] = await complete_all(last)
    t0 = time.perf_counter()
    b = await batches.get_batch(deps, big.id)
    out["get_batch_at_end_ms"] = (time.perf_counter() - t0) * 1000
    assert (b.completed, b.status) == (n, "completed"), b
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with stores.local("jobline-bench-") as services:
        # The core refuses bulk calls over max_bulk_jobs (a per-request cap, 10,000 by default);
        # this bench measures batches far larger than that on purpose.
        settings = Settings().with_(database_url=services.database_url,
                                    redis_url=services.redis_url, redis_prefix="benchdeps",
                                    max_bulk_jobs=max(args.batch, 20_000))
        deps = await connect(settings)
        try:
            results: dict[str, float] = {}
            for per_call in (1, 500):
                n = 2000 if per_call == 1 else 20000
                results[f"complete_bare_statement_{per_call}_per_call_jobs_per_s"] = \
                    await complete_rate(deps, n, per_call, bare=True)
                results[f"complete_now_{per_call}_per_call_jobs_per_s"] = \
                    await complete_rate(deps, n, per_call, bare=False)
                results[f"complete_batch_jobs_{per_call}_per_call_jobs_per_s"] = \
                    await complete_rate(deps, n, per_call, bare=False, in_batch=True)
            results.update(await big_batch(deps, args.batch))
        finally:
            await deps.close()
        return {"settings": {"batch": args.batch, "cpus": os.cpu_count()}, "results": results}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=100_000)
    args = ap.parse_args()
    import uvloop

    report = uvloop.run(run(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "deps_batches.json").write_text(json.dumps(report, indent=2))
    lines = ["# deps_batches", "", f"settings: {report['settings']}", "",
             "| figure | value |", "|---|---:|"]
    lines += [f"| {k} | {v:,.2f} |" for k, v in report["results"].items()]
    (RESULTS / "deps_batches.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(report["results"], indent=2))


if __name__ == "__main__":
    main()
