"""Where idle latency goes: the submit -> handler-start path step by step, warm and cold.

Two parts, on embedded PostgreSQL + Valkey (or ``DATABASE_URL``/``REDIS_URL``):

1. Round trips from this process, back to back ("warm") and each after 10 ms of idleness
   ("cold", which is what an idle system sees): ``SELECT 1``, Valkey ``PING``, a one-job
   ``submit``.
2. One job at a time into an idle worker (as scenario 5 of the suite) whose app
   (``latency_probe_handlers``) stamps each step: submit call, the Redis half of the claim
   answered (for an idle worker the wake-up and the claim script are one round trip),
   PostgreSQL claim, handler start. Medians and p90 per step.

Results: ``bench/results/latency_breakdown.{json,md}``.

    python bench/latency_breakdown.py                 # 300 samples per figure
    python bench/latency_breakdown.py --n 20 --out /tmp/x   # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402
import stores  # noqa: E402
import suite  # noqa: E402

from jobline.shared.core import jobs  # noqa: E402
from jobline.shared.core.models import JobSpec  # noqa: E402
from jobline.shared.platform.config import Settings  # noqa: E402
from jobline.shared.platform.connections import connect, create_redis  # noqa: E402

RESULTS = report.RESULTS
GAP_S = 0.01


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))]


async def timed(fn: Callable[[], Awaitable[Any]], n: int, gap: float) -> dict[str, float]:
    xs = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        xs.append((time.perf_counter() - t) * 1000)
        if gap:
            await asyncio.sleep(gap)  # the idleness being measured
    return {"p50_ms": round(pct(xs, 0.5), 3), "p90_ms": round(pct(xs, 0.9), 3)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with stores.local("jobline-latency-") as services:
        settings = Settings().with_(database_url=services.database_url,
                                    redis_url=services.redis_url, redis_prefix="bench")
        env = suite.Env(settings, suite.SIZES["full"])
        await env.reset()
        deps = await connect(settings)
        out: dict[str, Any] = {"round_trips": {}, "idle_path": {}}
        try:
            def one() -> Awaitable[Any]:
                return jobs.submit(deps, JobSpec(queue="rt", job_type="demo.noop", payload={}),
                                   positions=False)

            await one()  # the queue exists from here on, as in a running system
            for label, gap in (("warm", 0.0), ("cold", GAP_S)):
                out["round_trips"][label] = {
                    "select_1": await timed(lambda: deps.pool.fetchval("SELECT 1"), args.n, gap),
                    "valkey_ping": await timed(lambda: deps.redis.ping(), args.n, gap),
                    "submit": await timed(one, args.n, gap)}
            waiter = create_redis(settings.redis_url or "", blocking=True)
            key = f"{settings.redis_prefix}:bench:trace"
            procs = env.workers(processes=1, concurrency=25, queues="trace",
                                app="latency_probe_handlers")
            steps: dict[str, list[float]] = {k: [] for k in (
                "submit", "submit_end_to_redis_claimed", "pg_claim", "claim_to_handler",
                "total")}
            try:
                await env.wait_workers(deps, 1)
                for i in range(args.n + 5):
                    t0 = time.time()
                    await jobs.submit(deps, JobSpec(queue="trace", job_type="bench.trace",
                                                    payload={"i": i}), positions=False)
                    t1 = time.time()
                    got = await waiter.blpop([key], timeout=10)
                    if got is None:
                        raise RuntimeError("traced job did not start")
                    f = [float(x) for x in got[1].decode().split()]
                    if int(f[0]) != i:
                        raise RuntimeError(f"got job {f[0]}, expected {i}")
                    _, redis_done, pg_done, started = f
                    if i >= 5:
                        for k, v in (("submit", t1 - t0),
                                     ("submit_end_to_redis_claimed", redis_done - t1),
                                     ("pg_claim", pg_done - redis_done),
                                     ("claim_to_handler", started - pg_done),
                                     ("total", started - t0)):
                            steps[k].append(v * 1000)
                    await asyncio.sleep(GAP_S)  # the worker goes idle again
            finally:
                suite.stop(procs)
                await waiter.aclose()
            out["idle_path"] = {k: {"p50_ms": round(pct(v, 0.5), 3),
                                    "p90_ms": round(pct(v, 0.9), 3)} for k, v in steps.items()}
        finally:
            await deps.close()
        out["settings"] = {"n": args.n, "gap_ms": GAP_S * 1000, "durable": True}
        out["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform()}
        return out


def markdown(r: dict[str, Any], name: str) -> str:
    lines = [f"# {name}", "", f"machine: {r['machine']}", "", f"settings: {r['settings']}", "",
             "## Round trips (ms)", "", "| call | warm p50 | warm p90 | cold p50 | cold p90 |",
             "|---|---:|---:|---:|---:|"]
    for call in r["round_trips"]["warm"]:
        w, c = r["round_trips"]["warm"][call], r["round_trips"]["cold"][call]
        lines.append(f"| {call} | {w['p50_ms']:.3f} | {w['p90_ms']:.3f} | {c['p50_ms']:.3f} | "
                     f"{c['p90_ms']:.3f} |")
    lines += ["", "## Idle path, one job at a time (ms)", "", "| step | p50 | p90 |",
              "|---|---:|---:|"]
    for step, v in r["idle_path"].items():
        lines.append(f"| {step} | {v['p50_ms']:.3f} | {v['p90_ms']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    report.write(uvloop.run(run(args)), "latency_breakdown", args.out, markdown)


if __name__ == "__main__":
    main()
