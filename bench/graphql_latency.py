"""GraphQL benchmark: event commit -> subscription message latency under load, and the slowest
dashboard-style query on a large dataset.

- Latency: the API runs as its own uvicorn process (``python -m jobline.api``); this process runs
  the relay, a `websockets` client subscribed to ``jobEvents`` (graphql-transport-ws) and a load
  generator submitting ``--rate`` jobs/s (batches every 20 ms). Each job's latency is from the
  moment its submitting transaction returned (committed) to the moment the client received the
  ``jobs.submitted`` message for it: trigger -> NOTIFY -> relay -> bus -> API's live feed ->
  websocket. p50/p99 over every job of the run.
- Dashboard queries: ``--jobs`` jobs spread over 24 h in 6 queues x 4 types (inserted with one
  INSERT ... SELECT, outbox trigger disabled for the load) and a day of per-minute rollups and
  histograms for them; each dashboard query is timed over HTTP (p50 of ``--repeat`` runs).

    python bench/graphql_latency.py                   # full, writes bench/results/graphql.{json,md}
    python bench/graphql_latency.py --quick --out DIR # smoke (run by the test suite)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import stores
import websockets

from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.events.buses import create_bus
from jobline.shared.events.outbox import Relay
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import connect
from jobline.shared.security import auth

RESULTS = Path(__file__).parent / "results"
SUB = """subscription { jobEvents(filter: {types: ["jobs.submitted"], queue: "load"}) { jobId } }"""


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_api(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": settings.database_url or "",
           "REDIS_URL": settings.redis_url or "", "JOBLINE_REDIS_PREFIX": settings.redis_prefix,
           "JOBLINE_PORT": str(port), "JOBLINE_HOST": "127.0.0.1"}
    return subprocess.Popen([sys.executable, "-m", "jobline.api"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_http(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as c:
        while True:
            try:
                if (await c.get(f"{base}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("API did not start")
            await asyncio.sleep(0.1)  # polling a starting process


async def latency(settings: Settings, base: str, key: str, rate: int,
                  seconds: float) -> dict[str, Any]:
    deps = await connect(settings)
    bus = await create_bus(settings)
    relay = Relay(deps, bus)
    relay_task = asyncio.create_task(relay.run())
    committed: dict[str, float] = {}
    received: dict[str, float] = {}
    try:
        ws_url = base.replace("http://", "ws://") + "/graphql"
        async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"],
                                      max_queue=None) as ws:
            await ws.send(orjson.dumps({"type": "connection_init",
                                        "payload": {"apiKey": key}}).decode())
            assert orjson.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(orjson.dumps({"id": "1", "type": "subscribe",
                                        "payload": {"query": SUB}}).decode())

            async def reader() -> None:
                async for raw in ws:
                    now = time.perf_counter()
                    msg = orjson.loads(raw)
                    if msg.get("type") == "next":
                        received[msg["payload"]["data"]["jobEvents"]["jobId"]] = now

            rtask = asyncio.create_task(reader())
            # Warm-up: wait until a probe job's event arrives (the subscription is live). The
            # server registers the subscription asynchronously, so a probe sent before that is
            # never delivered: send a fresh probe every 0.5 s until one arrives, within a deadline.
            warm_deadline = time.perf_counter() + 60
            probes: list[str] = []
            while not any(p in received for p in probes):
                if time.perf_counter() > warm_deadline:
                    raise TimeoutError("the subscription delivered no probe event within 60 s")
                probe = await jobs.submit(deps, JobSpec("load", "probe", {}), positions=False)
                probes.append(str(probe.submitted.id))
                until = time.perf_counter() + 0.5
                while time.perf_counter() < until and not any(p in received for p in probes):
                    await asyncio.sleep(0.01)  # polling the reader's dict, bounded above
            tick = 0.02
            per_tick = max(1, round(rate * tick))
            start = time.perf_counter()
            n_ticks = int(seconds / tick)
            for i in range(n_ticks):
                res = await jobs.submit_many(
                    deps, [JobSpec("load", "noop", {"i": i}) for _ in range(per_tick)],
                    positions=False)
                t = time.perf_counter()
                for r in res:
                    committed[str(r.submitted.id)] = t
                delay = start + (i + 1) * tick - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            elapsed = time.perf_counter() - start
            deadline = time.perf_counter() + 30
            while len(set(committed) - set(received)) and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            rtask.cancel()
        lat = [(received[j] - t) * 1000 for j, t in committed.items() if j in received]
        return {"jobs": len(committed), "received": len(lat),
                "achieved_rate_per_s": round(len(committed) / elapsed, 1),
                "p50_ms": round(statistics.median(lat), 2), "p99_ms": round(pct(lat, 99), 2),
                "max_ms": round(max(lat), 2)}
    finally:
        relay.request_stop()
        await relay_task
        await bus.close()
        await deps.close()


SEED_JOBS = """
INSERT INTO jobs (id, queue_name, job_type, payload, status, attempts, created_at, started_at,
                  completed_at, scheduled_for, updated_at, error, error_type)
SELECT (lpad(to_hex(t_ms), 12, '0') || '7000' || '8' || substr(md5(g::text), 1, 15))::uuid,
       'q' || (g % 6), 't' || (g % 4), jsonb_build_object('n', g, 'customer', g % 1000),
       s.status, CASE WHEN s.status = 'pending' THEN 0 ELSE 1 END,
       to_timestamp(t_ms / 1000.0), to_timestamp(t_ms / 1000.0 + 0.05),
       CASE WHEN s.status IN ('completed', 'dead_letter') THEN to_timestamp(t_ms / 1000.0 + 0.05
            + (g % 997) / 1000.0) END,
       to_timestamp(t_ms / 1000.0), to_timestamp(t_ms / 1000.0),
       CASE WHEN s.status = 'dead_letter' THEN 'timeout talking to upstream ' || (g % 50) END,
       CASE WHEN s.status = 'dead_letter' THEN 'Timeout' END
  FROM generate_series(1, $1::int) AS g
 CROSS JOIN LATERAL (SELECT ($2::bigint + (g::bigint * $3::bigint / $1::int)) AS t_ms) AS t
 CROSS JOIN LATERAL (SELECT CASE WHEN g % 50 = 0 THEN 'dead_letter'
                                 WHEN g % 97 = 0 THEN 'pending' ELSE 'completed' END AS status) s
"""

SEED_ROLLUPS = """
INSERT INTO job_rollups (minute, queue_name, job_type, submitted, started, completed, failed,
                         retries, dead_letter, cancelled, duration_sum_ms, wait_sum_ms)
SELECT m, 'q' || q, 't' || t, 120, 120, 115, 5, 3, 2, 0, 115 * 500, 120 * 40
  FROM generate_series(to_timestamp($1 / 1000.0), to_timestamp($2 / 1000.0) - interval '1 minute',
                       interval '1 minute') AS m,
       generate_series(0, 5) AS q, generate_series(0, 3) AS t
"""

SEED_HIST = """
INSERT INTO job_rollup_histograms (minute, queue_name, job_type, metric, bucket, n)
SELECT m, 'q' || q, 't' || t, metric, b, 10 + b
  FROM generate_series(to_timestamp($1 / 1000.0), to_timestamp($2 / 1000.0) - interval '1 minute',
                       interval '1 minute') AS m,
       generate_series(0, 5) AS q, generate_series(0, 3) AS t,
       unnest(ARRAY['duration', 'wait']) AS metric, generate_series(4, 11) AS b
"""

DASHBOARD = {
    "queueMetrics (all queues)": "{ queueMetrics { name ready oldestPendingAgeMs "
                                 "throughputPerMin failureRate health } }",
    "queues (counts by status)": "{ queues { name counts { pending completed deadLetter } } }",
    "throughputSeries 24h": "query($f: DateTime, $t: DateTime) { throughputSeries(from: $f, "
                            "to: $t) { minuteMs completed failed } }",
    "durationHistogram 24h": "query($f: DateTime, $t: DateTime) { durationHistogram(from: $f, "
                             "to: $t) { total p50Ms p99Ms buckets { count } } }",
    "jobTimeline 1h page of 500": "query($h: DateTime, $t: DateTime) { jobTimeline(from: $h, "
                                  "to: $t, first: 500) { items { id startMs endMs status } } }",
    "jobs: failed in q3, first 50": '{ jobs(filter: {queue: "q3", status: DEAD_LETTER}, '
                                    "first: 50) { edges { node { id error attemptHistory "
                                    "{ attempt } } } } }",
    "jobs: error text search": '{ jobs(filter: {search: "upstream 7"}, first: 50) '
                               "{ edges { node { id } } } }",
    "jobs: payload match": '{ jobs(filter: {payloadMatch: {customer: 42}}, first: 50) '
                           "{ edges { node { id } } } }",
}


async def dashboard(settings: Settings, base: str, key: str, n_jobs: int,
                    repeat: int) -> dict[str, Any]:
    now = int(time.time() * 1000) // 60_000 * 60_000
    day = 86_400_000
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute("ALTER TABLE jobs DISABLE TRIGGER jobs_inserted_events")
        t0 = time.perf_counter()
        await conn.execute(SEED_JOBS, n_jobs, now - day, day)
        await conn.execute(SEED_ROLLUPS, now - day, now)
        await conn.execute(SEED_HIST, now - day, now)
        await conn.execute("ALTER TABLE jobs ENABLE TRIGGER jobs_inserted_events")
        await conn.execute("ANALYZE")
        seed_s = time.perf_counter() - t0
        sizes = {t: await conn.fetchval(f"SELECT count(*) FROM {t}")
                 for t in ("jobs", "job_rollups", "job_rollup_histograms")}
    finally:
        await conn.close()
    iso = lambda ms: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))  # noqa: E731
    variables = {"f": iso(now - day), "t": iso(now), "h": iso(now - 3_600_000)}
    timings: dict[str, dict[str, float]] = {}
    async with httpx.AsyncClient(base_url=base, headers={"X-Api-Key": key},
                                 timeout=120) as c:
        for name, q in DASHBOARD.items():
            runs = []
            for _ in range(repeat):
                t = time.perf_counter()
                r = await c.post("/graphql", json={"query": q, "variables": variables})
                runs.append((time.perf_counter() - t) * 1000)
                body = r.json()
                assert r.status_code == 200 and not body.get("errors"), (name, body)
            timings[name] = {"p50_ms": round(statistics.median(runs), 1),
                             "max_ms": round(max(runs), 1)}
        for name, path in (("GET /metrics (Prometheus scrape)", "/metrics"),
                           ("GET /api/v1/metrics/queues", "/api/v1/metrics/queues")):
            runs = []
            for _ in range(repeat):
                t = time.perf_counter()
                r = await c.get(path)
                runs.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, (path, r.text[:200])
            timings[name] = {"p50_ms": round(statistics.median(runs), 1),
                             "max_ms": round(max(runs), 1)}
    slowest = max(timings, key=lambda k: timings[k]["p50_ms"])
    return {"rows": sizes, "seed_s": round(seed_s, 1), "queries": timings,
            "slowest": {"query": slowest, **timings[slowest]}}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with stores.local("jobline-bench-gql-") as services:
        api: subprocess.Popen[bytes] | None = None
        try:
            prefix = f"benchgql{uuid.uuid4().hex[:6]}"
            settings = Settings().with_(database_url=services.database_url,
                                        redis_url=services.redis_url, redis_prefix=prefix)
            conn = await asyncpg.connect(settings.database_url)
            try:
                await conn.execute("TRUNCATE jobs, job_attempts, idempotency_keys, queues, "
                                   "job_events, job_rollups, job_rollup_histograms")
            finally:
                await conn.close()
            deps = await connect(settings)
            try:
                _, key = await auth.create_key(deps, "admin", "bench")
            finally:
                await deps.close()
            port = free_port()
            api = start_api(settings, port)
            base = f"http://127.0.0.1:{port}"
            await wait_http(base)
            lat = await latency(settings, base, key, args.rate, args.seconds)
            dash = await dashboard(settings, base, key, args.jobs, args.repeat)
            return {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "platform": platform.platform()},
                    "params": {"rate": args.rate, "seconds": args.seconds, "jobs": args.jobs,
                               "repeat": args.repeat},
                    "latency": lat, "dashboard": dash}
        finally:
            if api is not None:
                api.terminate()
                api.wait(30)


def markdown(name: str, r: dict[str, Any]) -> str:
    lat, dash = r["latency"], r["dashboard"]
    lines = [f"# {name}", "",
             f"Machine: {r['machine']['cpus']} CPUs, Python {r['machine']['python']}.", "",
             "## Event commit -> GraphQL subscription message", "",
             f"Load: {lat['achieved_rate_per_s']} jobs/s submitted for {r['params']['seconds']} s "
             f"({lat['jobs']} jobs, {lat['received']} messages received).", "",
             "| p50 | p99 | max |", "|---|---|---|",
             f"| {lat['p50_ms']} ms | {lat['p99_ms']} ms | {lat['max_ms']} ms |", "",
             "## Dashboard queries", "",
             "Data: " + ", ".join(f"{k} {v:,} rows" for k, v in dash["rows"].items()) + ".", "",
             "| query | p50 | max |", "|---|---|---|"]
    for q, t in dash["queries"].items():
        lines.append(f"| {q} | {t['p50_ms']} ms | {t['max_ms']} ms |")
    lines += ["", f"Slowest: {dash['slowest']['query']} ({dash['slowest']['p50_ms']} ms p50).",
              ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    name = "graphql"
    if args.quick:
        args.rate, args.seconds, args.jobs, args.repeat = 200, 1.0, 5_000, 1
        name = "graphql-smoke"
    result = asyncio.run(run(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(markdown(name, result))
    print(markdown(name, result))


if __name__ == "__main__":
    main()
