"""Job-event benchmark per bus backend (Redis Streams, Kafka via tansu).

- Latency: one job submitted at a time; from just before ``submit`` (so the figure includes the
  INSERT and its commit: an upper bound of commit -> subscriber) until an in-process live-feed
  subscriber receives its ``jobs.submitted`` event (trigger -> NOTIFY -> relay -> bus -> tail ->
  fan-out). p50/p99 over ``--latency`` jobs.
- Throughput: ``--events`` jobs submitted in bulk; events/s from the first commit until one
  consumer group has received (fetched and acknowledged) all of them, with the relay running.

    python bench/events.py                        # full, writes bench/results/events.{json,md}
    python bench/events.py --quick --out DIR      # smoke (run by the test suite)

Uses DATABASE_URL/REDIS_URL/KAFKA_BOOTSTRAP_SERVERS if set, else starts embedded servers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import asyncpg
import stores

from jobline.local import EmbeddedKafka
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.events.buses import create_bus
from jobline.shared.events.livefeed import EventFilter, LiveFeed
from jobline.shared.events.outbox import Relay
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import connect

RESULTS = Path(__file__).parent / "results"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


async def bench_backend(settings: Settings, n_latency: int, n_events: int) -> dict[str, Any]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute("TRUNCATE jobs, job_attempts, idempotency_keys, queues, job_events")
    finally:
        await conn.close()
    deps = await connect(settings)
    bus = await create_bus(settings)
    relay = Relay(deps, bus)
    relay_task = asyncio.create_task(relay.run())
    feed = LiveFeed(bus, queue_size=n_events + 10)
    await feed.start()
    try:
        sub = feed.subscribe(EventFilter(types=frozenset({"jobs.submitted"})))
        lat: list[float] = []
        for i in range(n_latency):
            t0 = time.perf_counter()
            res = await jobs.submit(deps, JobSpec("bench", "noop", {"i": i}), positions=False)
            while True:
                e = await asyncio.wait_for(anext(sub), 30)
                if e.job_id == res.submitted.id:
                    break
            lat.append((time.perf_counter() - t0) * 1000)
        sub.close()
        group = await bus.consumer(f"bench-{time.time_ns()}", "c")
        # events published before this group existed (the latency phase) are read as well on
        # Redis (groups start at 0); count only this phase's submitted events.
        t0 = time.perf_counter()
        for lo in range(0, n_events, 1000):
            await jobs.submit_many(deps, [JobSpec("tput", "noop", {"i": i})
                                          for i in range(lo, min(lo + 1000, n_events))])
        seen = 0
        while seen < n_events:
            batch = await group.fetch(1000, 5.0)
            seen += sum(1 for d in batch if d.event.queue == "tput")
            await group.ack(batch)
        elapsed = time.perf_counter() - t0
        await group.close()
        return {"latency_ms": {"p50": statistics.median(lat), "p99": pct(lat, 99),
                               "max": max(lat), "n": len(lat)},
                "events_per_s": n_events / elapsed, "events": n_events}
    finally:
        await feed.close()
        relay.request_stop()
        await relay_task
        await bus.close()
        await deps.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with stores.local("jobline-bench-events-") as services:
        kafka: EmbeddedKafka | None = None
        try:
            settings = Settings().with_(database_url=services.database_url,
                                        redis_url=services.redis_url, redis_prefix="benchev")
            results = {"redis": await bench_backend(settings, args.latency, args.events)}
            bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
            if not bootstrap:
                kafka = EmbeddedKafka(services.home / "tansu.log")
                bootstrap = kafka.start()
            results["kafka"] = await bench_backend(
                settings.with_(event_bus="kafka", kafka_bootstrap=bootstrap), args.latency,
                args.events)
            return {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "platform": platform.platform()},
                    "settings": {"latency_jobs": args.latency, "events": args.events,
                                 "kafka_broker": "tansu (memory)" if kafka else bootstrap},
                    "results": results}
        finally:
            if kafka is not None:
                kafka.stop()


def write(report: dict[str, Any], out: Path, name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2))
    lines = [f"# {name}", "", f"settings: {report['settings']}", "",
             "| backend | commit->subscriber p50 ms | p99 ms | max ms | events/s |",
             "|---|---:|---:|---:|---:|"]
    for k, v in report["results"].items():
        lat = v["latency_ms"]
        lines.append(f"| {k} | {lat['p50']:.1f} | {lat['p99']:.1f} | {lat['max']:.1f} | "
                     f"{v['events_per_s']:,.0f} |")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=int, default=500, help="jobs for the latency run")
    ap.add_argument("--events", type=int, default=20_000, help="jobs for the throughput run")
    ap.add_argument("--quick", action="store_true", help="small; write results as events-smoke")
    ap.add_argument("--out", default=None, help="results directory (default bench/results)")
    args = ap.parse_args()
    if args.quick:
        args.latency, args.events = min(args.latency, 20), min(args.events, 500)
    import uvloop

    report = uvloop.run(run(args))
    write(report, Path(args.out) if args.out else RESULTS,
          "events-smoke" if args.quick else "events")
    print(json.dumps(report["results"], indent=2))


if __name__ == "__main__":
    main()
