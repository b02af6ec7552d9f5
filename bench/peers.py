"""Scenario 10: the queues people would otherwise pick, on the same machine, same Valkey, same
no-op workload, from the same run as Jobline's figures.

Python peers (Celery, RQ, arq, SAQ, Dramatiq, Taskiq, Huey) are installed with pip into
git-ignored venvs ``bench/.peers/venv-<peer>`` (one each: their redis-py pins conflict); BullMQ with npm into ``bench/.peers/node``. Each peer runs in
``bench/peer_apps/driver.py`` with its documented fast settings for 2 cores (see ``tasks.py`` and
``driver.worker_cmds``) against database 1 of the suite's Valkey. A peer that fails to install or
to run is reported with its error; it never stops the suite.

Every peer handler does one Redis INCR (or RPUSH for a latency job) so the driver can time the
drain; Jobline's no-op needs no such help (completions are committed in PostgreSQL), so if
anything the peers' figures include a little extra work per job and Jobline's include a fsync'd
commit. Peers are not durable in Jobline's sense (an acknowledged job lives only in Redis).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).parent
PEERS_DIR = HERE / ".peers"
NODE = PEERS_DIR / "node"
PY_PEERS = {"celery": "celery packaging", "rq": "rq", "arq": "arq", "saq": "saq typing_extensions", "dramatiq": "dramatiq",
            "taskiq": "taskiq taskiq-redis", "huey": "huey"}
ALL_PEERS = ["celery", "rq", "arq", "saq", "dramatiq", "taskiq", "huey", "bullmq"]


def _run(cmd: list[str], timeout: float, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def venv(peer: str) -> Path:
    return PEERS_DIR / f"venv-{peer}"


def install(only: list[str] | None = None) -> dict[str, str]:
    """Install what is missing (of ``only``, default every peer); returns {peer: error} for the
    peers that could not be.

    One venv per peer: their redis-py requirements conflict (kombu needs >= 6.1, arq < 6).
    """
    errors: dict[str, str] = {}
    for peer, pkgs in PY_PEERS.items():
        if only is not None and peer not in only:
            continue
        py = venv(peer) / "bin" / "python"
        mod = peer if peer != "taskiq" else "taskiq_redis"
        try:
            if py.exists() and _run([str(py), "-c", f"import {mod}"], 60).returncode == 0:
                continue
            r = _run([sys.executable, "-m", "venv", str(venv(peer))], 300)
            if r.returncode == 0:
                r = _run([str(py), "-m", "pip", "install", "-q", "redis", *pkgs.split()], 900)
            if r.returncode:
                errors[peer] = f"install failed: {r.stderr.strip()[-300:]}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            errors[peer] = f"install failed: {exc}"
    # both modules: a node_modules holding bullmq alone (ioredis is not among its dependencies)
    # made the driver fail with "Cannot find module 'ioredis'"
    if (only is None or "bullmq" in only) and not all(
            (NODE / "node_modules" / m).is_dir() for m in ("bullmq", "ioredis")):
        try:
            NODE.mkdir(parents=True, exist_ok=True)
            if not (NODE / "package.json").exists():
                (NODE / "package.json").write_text('{"name": "peers", "private": true}\n')
            r = _run(["npm", "install", "--no-audit", "--no-fund", "bullmq", "ioredis"], 600,
                     cwd=NODE)
            if r.returncode:
                errors["bullmq"] = f"npm install failed: {r.stderr.strip()[-300:]}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            errors["bullmq"] = f"npm install failed: {exc}"
    return errors


def peer_url(redis_url: str) -> str:
    u = urlsplit(redis_url)
    return f"redis://{u.hostname}:{u.port or 6379}/1"


def measure_peer(peer: str, redis_url: str, n: int, idle: int,
                 python: str | None = None) -> dict[str, Any]:
    """``python``: the interpreter for the driver (default the peer's venv; BullMQ's driver
    needs only redis-py, so any Python with it will do, e.g. Jobline's own)."""
    env = dict(os.environ, PEER=peer, PEER_REDIS_URL=peer_url(redis_url),
               PEER_NODE_DIR=str(NODE), PYTHONPATH=str(HERE / "peer_apps"))
    try:
        # bullmq's driver is Python too (it shells out to node); any peer venv will do
        py = python or venv(peer if peer in PY_PEERS else "rq") / "bin" / "python"
        r = _run([str(py), "driver.py", str(n), str(idle)], 900,
                 cwd=HERE / "peer_apps", env=env)
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    if r.returncode:
        return {"error": (r.stderr.strip() or r.stdout.strip())[-400:]}
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


async def jobline_figures(env: Any, n: int, idle: int) -> dict[str, Any]:
    import suite
    import throughput
    s = env.settings
    await env.reset()
    conc = await throughput.bench_submit_concurrent(s, n)
    await env.reset()
    bulk = await throughput.bench_submit_bulk(s, n)
    await env.reset()
    first_last = await throughput.bench_process(s, n, 2, 25)
    deps = await suite.connect(s)
    try:
        proc = await suite.middle_rate(deps)
    finally:
        await deps.close()
    small = suite.Env(s, dict(env.size, idle_jobs=idle))
    lat = await suite.s_idle_latency(small)
    return {"enqueue_per_s": max(conc, bulk), "enqueue_concurrent_single_per_s": conc,
            "enqueue_bulk_per_s": bulk, "process_per_s": proc,
            "process_first_to_last_per_s": first_last,
            "latency_p50_ms": lat["p50_ms"], "latency_p99_ms": lat["p99_ms"]}


async def run_all(env: Any, size: dict[str, Any], small: bool,
                  peers: list[str] | None = None) -> dict[str, Any]:
    n, idle = size["peer_jobs"], size["peer_idle"]
    t0 = time.perf_counter()
    errors = await asyncio.to_thread(install)
    out: dict[str, Any] = {"jobs": n, "idle_jobs": idle, "install_s": round(
        time.perf_counter() - t0, 1), "peers": {}}
    out["jobline"] = await jobline_figures(env, n, idle)
    for peer in peers or ALL_PEERS:
        if peer in errors:
            out["peers"][peer] = {"error": errors[peer]}
            continue
        out["peers"][peer] = await asyncio.to_thread(measure_peer, peer, env.settings.redis_url,
                                                     n, idle)
        print(f"  peer {peer}: {out['peers'][peer]}", file=sys.stderr, flush=True)
    out["versions"] = peer_versions()
    return out


def peer_versions() -> dict[str, str]:
    v: dict[str, str] = {}
    for peer in PY_PEERS:
        code = (f"import importlib.metadata as m; print(m.version({peer!r}), 'redis-py', "
                "m.version('redis'))")
        try:
            v[peer] = _run([str(venv(peer) / "bin" / "python"), "-c", code], 60
                           ).stdout.strip() or "not installed"
        except (OSError, subprocess.TimeoutExpired):
            v[peer] = "not installed"
    try:
        pkg = json.loads((NODE / "node_modules" / "bullmq" / "package.json").read_text())
        v["bullmq"] = pkg["version"]
    except (OSError, ValueError, KeyError):
        v["bullmq"] = "not installed"
    return v


def markdown(p: dict[str, Any]) -> list[str]:
    j = p["jobline"]
    lines = [f"## peers ({p['jobs']:,} no-op jobs, {p['idle_jobs']} idle-latency jobs, one run)",
             "", f"versions: {p.get('versions')}", "",
             "Ratio = Jobline / peer for throughput, peer / Jobline for latency (> 1: Jobline "
             "ahead). Jobline enqueue = best of concurrent single and bulk; durable. process/s = "
             "rate between 10% and 90% of the jobs done (all systems the same way).", "",
             "| system | enqueue/s | process/s | latency p50 ms | latency p99 ms | "
             "enqueue ratio | process ratio | p50 ratio |", "|---|---:|---:|---:|---:|---:|---:|---:|",
             f"| **jobline** | {j['enqueue_per_s']:,.0f} | {j['process_per_s']:,.0f} | "
             f"{j['latency_p50_ms']:.2f} | {j['latency_p99_ms']:.2f} | | | |"]
    for name, r in p["peers"].items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error'][:120].replace('|', '/')} | | | | | | |")
            continue
        lines.append(
            f"| {name} | {r['enqueue_per_s']:,.0f} | {r['process_per_s']:,.0f} | "
            f"{r['latency_p50_ms']:.2f} | {r['latency_p99_ms']:.2f} | "
            f"{j['enqueue_per_s'] / r['enqueue_per_s']:.1f}x | "
            f"{j['process_per_s'] / r['process_per_s']:.1f}x | "
            f"{r['latency_p50_ms'] / max(1e-9, j['latency_p50_ms']):.1f}x |")
    return lines
