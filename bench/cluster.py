"""Redis Cluster: jobs/s and Valkey CPU per job on one node, a 1-master cluster and 3 masters.

Each configuration runs the same workload: ``--processes`` worker processes serving every queue
start and register, then ``--jobs`` no-op jobs are bulk-submitted over ``--queues`` queues
(spread over the slot groups) and drained. The rate is durable (first ``started_at`` to last ``completed_at`` in PostgreSQL);
the CPU of each Valkey node (and of the workers) over the submit + drain window gives µs per job
per node, and from the
busiest node's cost the projected ceiling of one shard (one core). This machine has 2 cores, so
3 masters cannot run faster here than one: the point is the per-node cost, which is what adding
shards divides (docs/scaling.md).

    python bench/cluster.py --jobs 20000 --runs 3      # bench/results/cluster.{json,md}
    python bench/cluster.py --jobs 2000 --runs 1 --quick

Uses DATABASE_URL if set, else an embedded PostgreSQL; starts its own Valkey nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import redis
import shipped
import stores

from jobline.local import EmbeddedValkey
from jobline.local.valkey_cluster import ClusterNodeServer, ValkeyCluster
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.observe.workers import list_workers
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect

RESULTS = Path(__file__).parent / "results"
CONFIGS = ["single", "cluster-1", "cluster-3"]


async def submit_and_wait(deps: Deps, names: list[str], n: int) -> None:
    """Submit ``n`` no-op jobs round-robin over ``names`` and wait until all completed."""
    for start in range(0, n, 5000):
        await jobs.submit_many(deps, [
            JobSpec(queue=names[i % len(names)], job_type="demo.noop", payload={"i": i})
            for i in range(start, min(n, start + 5000))])
    deadline = time.monotonic() + 600
    while await deps.pool.fetchval(
            "SELECT count(*) FROM jobs WHERE status = 'completed'") < n:
        if time.monotonic() > deadline:
            raise RuntimeError("drain did not finish in 10 minutes")
        await asyncio.sleep(0.25)  # a progress probe; the rate comes from timestamps


async def drain(settings: Settings, pids: list[int], n: int, queues: int, processes: int,
                concurrency: int) -> dict[str, Any]:
    deps = await connect(settings)
    try:
        await deps.pool.execute("TRUNCATE jobs, job_attempts, idempotency_keys, queues")
        names = [f"c{i}" for i in range(queues)]
        procs = {pid: psutil.Process(pid) for pid in pids}
        env = dict(os.environ, DATABASE_URL=settings.database_url or "",
                   REDIS_URL=settings.redis_url or "", JOBLINE_REDIS_PREFIX=settings.redis_prefix)
        # Workers first, idle until registered: their CPU then counts from here on, without
        # the interpreter's start (~1 s of CPU per process), which is no per-job cost.
        workers = [subprocess.Popen(
            [sys.executable, "-m", "jobline", "worker", "--app", "jobline.demo",
             "--concurrency", str(concurrency)], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(processes)]
        try:
            while len(await list_workers(deps)) < processes:
                await asyncio.sleep(0.05)
            wcpu0 = sum(sum(psutil.Process(w.pid).cpu_times()[:2]) for w in workers)
            cpu0 = {pid: sum(p.cpu_times()[:2]) for pid, p in procs.items()}
            await submit_and_wait(deps, names, n)
            cpu = {pid: sum(p.cpu_times()[:2]) - cpu0[pid] for pid, p in procs.items()}
            worker_cpu = sum(sum(psutil.Process(w.pid).cpu_times()[:2]) for w in workers) - wcpu0
            row = await deps.pool.fetchrow(
                "SELECT min(started_at) AS a, max(completed_at) AS b, count(*) AS n FROM jobs "
                "WHERE status = 'completed'")
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(30)
        per_node = sorted((c * 1e6 / n for c in cpu.values()), reverse=True)
        return {"jobs_per_s": n / (row["b"] - row["a"]).total_seconds(),
                "valkey_us_per_job_by_node": per_node,
                "valkey_us_per_job_total": sum(per_node),
                "busiest_node_us_per_job": per_node[0],
                # the client side of the same work: the cluster client's routing and the
                # claims across slot groups are paid here, not in Valkey
                "workers_us_per_job": worker_cpu * 1e6 / n}
    finally:
        await deps.close()


async def drain_shipped(services: Any, url: str, pids: list[int], n: int,
                        queues: int) -> dict[str, Any]:
    """The same workload on ``make run``'s stack (API, scheduler, relay with events on, 2 worker
    processes x 25: ``bench/shipped.py``'s ``Stack``) with ``url`` as its Redis."""
    svc = types.SimpleNamespace(database_url=services.database_url, redis_url=url,
                                postgres=services.postgres, valkey=None)
    stack = shipped.Stack(svc)
    deps = await connect(stack.settings)
    try:
        await deps.pool.execute("TRUNCATE jobs, job_attempts, idempotency_keys, queues")
        stack.start()
        try:
            await stack.wait_ready(deps, 2)
            names = [f"c{i}" for i in range(queues)]
            procs = {pid: psutil.Process(pid) for pid in pids}
            cpu0 = {pid: sum(p.cpu_times()[:2]) for pid, p in procs.items()}
            scpu0 = stack.cpu()
            await submit_and_wait(deps, names, n)
            cpu = {pid: sum(p.cpu_times()[:2]) - cpu0[pid] for pid, p in procs.items()}
            scpu = stack.cpu()
            row = await deps.pool.fetchrow(
                "SELECT min(started_at) AS a, max(completed_at) AS b FROM jobs "
                "WHERE status = 'completed'")
        finally:
            stack.stop()
        per_node = sorted((c * 1e6 / n for c in cpu.values()), reverse=True)
        groups = {g: (scpu[g] - scpu0.get(g, 0.0)) * 1e6 / n for g in scpu if g != "driver"}
        return {"jobs_per_s": n / (row["b"] - row["a"]).total_seconds(),
                "valkey_us_per_job_by_node": per_node,
                "valkey_us_per_job_total": sum(per_node),
                "busiest_node_us_per_job": per_node[0],
                "workers_us_per_job": groups.get("workers", 0.0),
                "stack_us_per_job": {g: round(v, 1) for g, v in groups.items()}}
    finally:
        await deps.close()


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)
    busiest = med("busiest_node_us_per_job")
    nodes = len(runs[0]["valkey_us_per_job_by_node"])
    return {
        "jobs_per_s": med("jobs_per_s"),
        "jobs_per_s_runs": [r["jobs_per_s"] for r in runs],
        "valkey_us_per_job_total": med("valkey_us_per_job_total"),
        "valkey_us_per_job_by_node": [statistics.median(r["valkey_us_per_job_by_node"][i]
                                                        for r in runs) for i in range(nodes)],
        "busiest_node_us_per_job": busiest,
        "workers_us_per_job": med("workers_us_per_job"),
        # one core per shard: the busiest node saturates first
        "projected_jobs_per_s_per_core_of_busiest_node": 1e6 / busiest if busiest else None,
    }


@contextlib.contextmanager
def valkey(config: str, tmp: Path) -> Iterator[tuple[str, list[int]]]:
    """(URL, node pids) of: one plain node, a cluster of one master (all 16,384 slots on one
    node: the cluster client and slot groups at the cost of a single server), or 3 masters."""
    if config == "single":
        node = EmbeddedValkey(tmp, persist=False)
        try:
            url = node.start()
            assert node.pid is not None
            yield url, [node.pid]
        finally:
            node.stop()
    elif config == "cluster-1":
        # valkey-cli --cluster create wants 3 masters; one node takes every slot by hand
        port, bus = (free_port() for _ in range(2))
        node = ClusterNodeServer(tmp, port, bus, node_timeout_ms=2000)
        try:
            node.start()
            c = redis.Redis(port=port)
            c.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            while c.info("cluster").get("cluster_enabled") != 1 or \
                    c.execute_command("CLUSTER", "INFO").decode().find("cluster_state:ok") < 0:
                time.sleep(0.05)  # a startup poll outside any measurement
            c.close()
            assert node.pid is not None
            yield f"redis://127.0.0.1:{port}", [node.pid]
        finally:
            node.stop()
    else:
        vc = ValkeyCluster(tmp, masters=int(config.split("-")[1]), replicas=0)
        try:
            url = vc.start()
            yield url, [n.pid for n in vc.nodes if n.pid is not None]
        finally:
            vc.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with stores.local("jobline-bench-cluster-", external=True) as services:
        for config in args.configs:
            with tempfile.TemporaryDirectory(prefix=f"jl-{config}-") as tmp, \
                    valkey(config, Path(tmp)) as (url, pids):
                settings = Settings().with_(database_url=services.database_url, redis_url=url,
                                            redis_prefix="bench")
                if args.stack == "shipped":
                    runs = [await drain_shipped(services, url, pids, args.jobs, args.queues)
                            for _ in range(args.runs)]
                else:
                    runs = [await drain(settings, pids, args.jobs, args.queues,
                                        args.processes, args.concurrency)
                            for _ in range(args.runs)]
            out[config] = {**summarize(runs), "runs": runs}
            print(config, json.dumps(out[config]["jobs_per_s_runs"]), flush=True)
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load": os.getloadavg()},
        "settings": {"stack": args.stack, "jobs": args.jobs, "queues": args.queues,
                     "runs": args.runs,
                     "processes": args.processes, "concurrency": args.concurrency},
        "results": out,
    }


def markdown(rep: dict[str, Any]) -> str:
    s = rep["settings"]
    lines = [
        "# Redis Cluster: 1 node vs 1 master vs 3 masters",
        "",
        f"{s['jobs']:,} no-op jobs over {s['queues']} queues, "
        + ("`make run`'s stack (API, scheduler, relay, events on, 2 worker processes x 25)"
           if s.get("stack") == "shipped" else
           f"{s['processes']} worker processes x {s['concurrency']}")
        + f", median of {s['runs']} runs (`python bench/cluster.py"
        + (" --stack shipped" if s.get("stack") == "shipped" else "") + "`).",
        "",
        "| configuration | jobs/s | Valkey µs/job (all nodes) | per node | busiest node: "
        "jobs/s per core | workers µs/job |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for name, r in rep["results"].items():
        nodes = ", ".join(f"{x:.1f}" for x in r["valkey_us_per_job_by_node"])
        proj = r["projected_jobs_per_s_per_core_of_busiest_node"]
        # a small run can finish inside one clock tick of a node's CPU counter (10 ms): then
        # there is no per-core projection, which the table says rather than failing
        proj_s = f"{proj:,.0f}" if proj else "n/a (under one CPU tick)"
        lines.append(f"| {name} | {r['jobs_per_s']:,.0f} | {r['valkey_us_per_job_total']:.1f} | "
                     f"{nodes} | {proj_s} | {r['workers_us_per_job']:.0f} |")
    lines += ["", f"Load average at the end: {rep['machine']['load']}", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20_000)
    ap.add_argument("--queues", type=int, default=12)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=25)
    ap.add_argument("--configs", type=lambda v: v.split(","), default=CONFIGS)
    ap.add_argument("--stack", choices=["workers", "shipped"], default="workers",
                    help="workers: bare worker processes; shipped: make run's stack, events on "
                         "(results as cluster-shipped)")
    ap.add_argument("--quick", action="store_true", help="write results as cluster-smoke")
    ap.add_argument("--out", default=str(RESULTS), help="results directory")
    args = ap.parse_args()
    import uvloop

    rep = uvloop.run(run(args))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "cluster-smoke" if args.quick else (
        "cluster-shipped" if args.stack == "shipped" else "cluster")
    (out / f"{name}.json").write_text(json.dumps(rep, indent=2))
    (out / f"{name}.md").write_text(markdown(rep))
    print(markdown(rep))


if __name__ == "__main__":
    main()
