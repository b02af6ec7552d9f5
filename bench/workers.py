"""Worker groups (issue 19): how fast scaling acts, and what autoscaling saves.

Real processes on fresh embedded PostgreSQL + Valkey: a scheduler (the autoscaler runs in its
fleet step, every ``JOBLINE_FLEET_STEP_MS``, 2 s as shipped) and a supervisor
(``jobline worker --group bench``) running ``demo.sleep`` jobs.

1. **scale request -> new processes claiming**: a group of 1 busy worker is scaled to 4 (the
   REST/GraphQL action's core call); time until the first and until all three new workers hold
   a job (their id on a processing job). Each run scales back to 1 first.
2. **backlog spike -> first scale-up**: an autoscaled group (min 1, max 8, 50 jobs of backlog
   per worker) sits idle; a burst of jobs is submitted; time until the desired count rises and
   until a new process claims.
3. **worker-hours vs a fixed pool**: the same bursty load (bursts separated by idle periods)
   run by an autoscaled group (min 1, max 6) and by a fixed pool of 6; worker-seconds are the
   live worker count integrated over the run (sampled every 0.25 s); the mean job wait shows
   what the savings cost.

    python bench/workers.py --runs 3
Results: ``bench/results/workers.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import stores

from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.fleet import actions, groups
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect

RESULTS = Path(__file__).parent / "results"
ADMIN = actions.Actor(None, "bench")
PROBE_S = 0.02  # polling period of the measurements (the figures' resolution)


def sleep_jobs(n: int, ms: int, queue: str) -> list[JobSpec]:
    return [JobSpec(queue=queue, job_type="demo.sleep", payload={"ms": ms}) for _ in range(n)]


async def until(pred: Any, timeout: float = 120.0) -> float:
    """Seconds until ``await pred()`` is true (polled every PROBE_S)."""
    t0 = time.monotonic()
    while not await pred():
        if time.monotonic() - t0 > timeout:
            raise RuntimeError("timed out")
        await asyncio.sleep(PROBE_S)  # benchmark probe
    return time.monotonic() - t0


async def live(deps: Deps, group: str) -> list[dict[str, Any]]:
    return [w for w in await actions.workers(deps) if w["group"] == group]


async def claiming(deps: Deps) -> set[str]:
    rows = await deps.pool.fetch(
        "SELECT DISTINCT worker_id FROM jobs WHERE status = 'processing'")
    return {r["worker_id"] for r in rows}


class Stack:
    def __init__(self, services: Any, fleet_step_ms: int) -> None:
        self.env = dict(os.environ, DATABASE_URL=services.database_url,
                        REDIS_URL=services.redis_url, JOBLINE_HOME=str(services.home),
                        JOBLINE_FLEET_STEP_MS=str(fleet_step_ms), JOBLINE_EVENTS="on")
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([sys.executable, "-m", "jobline", *args], env=self.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def stop(self, p: subprocess.Popen[bytes]) -> None:
        p.terminate()
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        self.procs.remove(p)

    def stop_all(self) -> None:
        for p in list(self.procs):
            self.stop(p)


async def scale_to_claim(deps: Deps, stack: Stack, runs: int) -> dict[str, list[float]]:
    sup = stack.start("worker", "--app", "jobline.demo", "--group", "manual", "--queues",
                      "manual", "--processes", "1", "--concurrency", "4")
    out: dict[str, list[float]] = {"first_new_claims_s": [], "all_new_claim_s": []}
    try:
        for _ in range(runs):
            await groups.set_desired(deps, "manual", desired=1, create=True)

            async def one() -> bool:
                return len(await live(deps, "manual")) == 1

            await until(one)
            # enough 200 ms jobs that every worker stays busy for the whole measurement
            await jobs.submit_many(deps, sleep_jobs(400, 200, "manual"))
            before = {w["id"] for w in await live(deps, "manual")}

            async def busy(before: set[str] = before) -> bool:
                return bool(await claiming(deps) & before)

            await until(busy)
            t0 = time.monotonic()
            await actions.scale(deps, "manual", ADMIN, desired=4)
            seen: set[str] = set()
            first = None
            while len(seen) < 3:
                seen |= (await claiming(deps)) - before
                if seen and first is None:
                    first = time.monotonic() - t0
                if time.monotonic() - t0 > 120:
                    raise RuntimeError("new workers never claimed")
                await asyncio.sleep(PROBE_S)  # benchmark probe
            out["first_new_claims_s"].append(first or 0.0)
            out["all_new_claim_s"].append(time.monotonic() - t0)
            await jobs.purge_queue(deps, "manual")  # the rest of the backlog: cancelled
    finally:
        stack.stop(sup)
    return out


async def spike_to_scale_up(deps: Deps, stack: Stack, runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"desired_rises_s": [], "new_process_claims_s": []}
    auto = {"min": 1, "max": 8, "targetBacklogPerWorker": 50, "upCooldownS": 0,
            "downCooldownS": 5, "hysteresis": 0.2, "queues": ["spike"]}
    await actions.configure_autoscale(deps, "spike", auto, ADMIN)
    sup = stack.start("worker", "--app", "jobline.demo", "--group", "spike", "--queues",
                      "spike", "--processes", "1", "--concurrency", "4")
    try:
        for _ in range(runs):
            async def at_min() -> bool:
                g = await groups.get_group(deps, "spike")
                return (g is not None and g.desired == 1
                        and len(await live(deps, "spike")) == 1)

            await until(at_min, timeout=180)
            before = {w["id"] for w in await live(deps, "spike")}
            t0 = time.monotonic()
            await jobs.submit_many(deps, sleep_jobs(600, 50, "spike"))

            async def rose() -> bool:
                g = await groups.get_group(deps, "spike")
                return g is not None and g.desired > 1

            out["desired_rises_s"].append(await until(rose))

            async def new_claims(before: set[str] = before) -> bool:
                return bool(await claiming(deps) - before)

            await until(new_claims)
            out["new_process_claims_s"].append(time.monotonic() - t0)

            async def drained() -> bool:
                return not await deps.pool.fetchval(
                    "SELECT count(*) FROM jobs WHERE queue_name = 'spike' "
                    "AND status IN ('pending', 'processing')")

            await until(drained, timeout=300)
    finally:
        stack.stop(sup)
    return out


async def bursty_load(deps: Deps, stack: Stack, group: str, queue: str, processes: int,
                      bursts: int, burst_jobs: int, idle_s: float) -> dict[str, float]:
    sup = stack.start("worker", "--app", "jobline.demo", "--group", group, "--queues", queue,
                      "--processes", str(processes), "--concurrency", "4")
    samples: list[tuple[float, int]] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic(), len(await live(deps, group))))
            await asyncio.sleep(0.25)  # the integral's step

    try:
        async def up() -> bool:
            return len(await live(deps, group)) >= 1

        await until(up)
        sampler = asyncio.create_task(sample())
        t0 = time.monotonic()
        for _ in range(bursts):
            await jobs.submit_many(deps, sleep_jobs(burst_jobs, 100, queue))

            async def drained() -> bool:
                return not await deps.pool.fetchval(
                    "SELECT count(*) FROM jobs WHERE queue_name = $1 "
                    "AND status IN ('pending', 'processing')", queue)

            await until(drained, timeout=600)
            await asyncio.sleep(idle_s)  # the idle period of the load profile
        duration = time.monotonic() - t0
        stop.set()
        await sampler
        worker_s = sum((b[0] - a[0]) * a[1] for a, b in itertools.pairwise(samples))
        wait = await deps.pool.fetchval(
            "SELECT avg(extract(epoch FROM started_at - created_at)) FROM jobs "
            "WHERE queue_name = $1", queue)
        return {"duration_s": duration, "worker_seconds": worker_s,
                "mean_live_workers": worker_s / duration, "mean_job_wait_s": float(wait)}
    finally:
        stack.stop(sup)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with stores.local("jobline-bench-workers-", external=False) as services:
        stack = Stack(services, args.fleet_step_ms)
        settings = Settings().with_(database_url=services.database_url,
                                    redis_url=services.redis_url)
        deps = await connect(settings)
        try:
            stack.start("scheduler")
            scale = await scale_to_claim(deps, stack, args.runs)
            spike = await spike_to_scale_up(deps, stack, args.runs)
            await actions.configure_autoscale(deps, "elastic", {
                "min": 1, "max": 6, "targetBacklogPerWorker": 40, "upCooldownS": 0,
                "downCooldownS": 5, "hysteresis": 0.2, "queues": ["elastic"]}, ADMIN)
            elastic = await bursty_load(deps, stack, "elastic", "elastic", 1, args.bursts,
                                        args.burst_jobs, args.idle_s)
            fixed = await bursty_load(deps, stack, "fixed", "fixed", 6, args.bursts,
                                      args.burst_jobs, args.idle_s)
        finally:
            stack.stop_all()
            await deps.close()

    def stat(v: list[float]) -> dict[str, Any]:
        return {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": v}

    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {"runs": args.runs, "fleet_step_ms": args.fleet_step_ms,
                     "resync_s": 2.0, "bursts": args.bursts, "burst_jobs": args.burst_jobs,
                     "job_ms": 100, "idle_s": args.idle_s, "concurrency": 4},
        "scale_request_to_claim": {k: stat(v) for k, v in scale.items()},
        "backlog_spike_to_scale_up": {k: stat(v) for k, v in spike.items()},
        "worker_hours": {"autoscaled_min1_max6": elastic, "fixed_pool_6": fixed,
                         "autoscaled_over_fixed": elastic["worker_seconds"]
                         / fixed["worker_seconds"]},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fleet-step-ms", type=int, default=2000)
    ap.add_argument("--bursts", type=int, default=3)
    ap.add_argument("--burst-jobs", type=int, default=600)
    ap.add_argument("--idle-s", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    r = asyncio.run(run(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "workers.json").write_text(json.dumps(r, indent=2) + "\n")
    s = r["scale_request_to_claim"]
    k = r["backlog_spike_to_scale_up"]
    w = r["worker_hours"]
    lines = [
        "# workers", "", f"settings: {r['settings']}", "",
        "| measure | median s | min s | max s |", "|---|---:|---:|---:|",
        *(f"| scale 1 -> 4: {n.replace('_', ' ')} | {v['median']:.2f} | {v['min']:.2f} | "
          f"{v['max']:.2f} |" for n, v in s.items()),
        *(f"| backlog spike: {n.replace('_', ' ')} | {v['median']:.2f} | {v['min']:.2f} | "
          f"{v['max']:.2f} |" for n, v in k.items()),
        "", "| bursty load | duration s | worker-seconds | mean live workers | mean job wait s |",
        "|---|---:|---:|---:|---:|",
        *(f"| {name} | {v['duration_s']:.1f} | {v['worker_seconds']:.1f} | "
          f"{v['mean_live_workers']:.2f} | {v['mean_job_wait_s']:.2f} |"
          for name, v in (("autoscaled (min 1, max 6)", w["autoscaled_min1_max6"]),
                          ("fixed pool of 6", w["fixed_pool_6"]))),
        "", f"autoscaled worker-hours / fixed: {w['autoscaled_over_fixed']:.2f}",
    ]
    (args.out / "workers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
