"""Dashboard benchmark in real headless Chromium against a real ``jobline run`` stack.

1. Commit -> DOM latency under load: a generator submits ``--rate`` jobs/s (demo.noop, REST bulk
   every 100 ms) to queue ``load`` while a second tab shows the unfiltered Jobs explorer (every
   event of the flood reaches that page). Each round pauses a fresh probe queue, submits 50 probe
   jobs to it, opens ``/jobs?queue=<probe>`` (rows shown PENDING) and installs a MutationObserver;
   then resumes the queue. A probe's latency is from its ``completed_at`` (set in the completing
   transaction, so slightly before its commit: the figure errs high) to the moment its row's
   status became COMPLETED in the DOM (both on this machine's wall clock). p50/p99 over all probes.
2. Queues page time to data with ``--jobs`` stored jobs (inserted with one INSERT ... SELECT, as in
   bench/graphql_latency.py): a fresh page load of ``/queues`` until the first queue row is in the
   DOM (live metrics) and until the per-status counts arrived; p50/max of ``--repeat`` loads.

    python bench/dashboard_latency.py                  # full: 1,000 jobs/s, 1M jobs
    python bench/dashboard_latency.py --rate 200 --rounds 2 --jobs 20000   # quick look
Writes bench/results/dashboard.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from graphql_latency import SEED_HIST, SEED_JOBS, SEED_ROLLUPS, pct
from playwright.async_api import Page, async_playwright

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
PROBES = 50

# Installed before the app loads: when each jobs.completed event reached the page's socket
# (a message holds one event, jobEvents, or a batch of them, jobEventBatches).
WS_SPY = """(() => {
  const Orig = window.WebSocket;
  window.__ws = {};
  window.WebSocket = class extends Orig {
    constructor(...a) {
      super(...a);
      this.addEventListener('message', (e) => {
        if (typeof e.data !== 'string' || !e.data.includes('jobs.completed')) return;
        const now = Date.now();
        const d = JSON.parse(e.data).payload?.data ?? {};
        const evs = d.jobEventBatches ? d.jobEventBatches.events : d.jobEvents ? [d.jobEvents] : [];
        for (const ev of evs)
          if (ev.type === 'jobs.completed' && ev.jobId && !(ev.jobId in window.__ws))
            window.__ws[ev.jobId] = now;
      });
    }
  };
})()"""

OBSERVE = """(ids) => {
  window.__done = {};
  const want = new Set(ids);
  const check = () => {
    for (const el of document.querySelectorAll('tr[data-job-id] [data-status="COMPLETED"]')) {
      const id = el.closest('tr').dataset.jobId;
      if (want.has(id) && !(id in window.__done)) window.__done[id] = Date.now();
    }
  };
  new MutationObserver(check).observe(document.body,
    {subtree: true, childList: true, attributes: true, attributeFilter: ['data-status']});
}"""

FIRST_ROW = """() => new Promise((resolve) => {
  const out = {};
  const check = () => {
    const t = document.querySelector('table[aria-label="Queues"]');
    if (!out.rows && document.querySelector('table[aria-label="Queues"] tr[data-queue]'))
      out.rows = performance.now();
    if (!out.counts && t && t.dataset.loaded === 'counts') out.counts = performance.now();
    if (out.rows && out.counts) resolve(out);
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true,
                                                  attributes: true});
  check();
})"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)  # benchmark driver polling, not a test


async def gql(c: httpx.AsyncClient, q: str, v: dict[str, Any] | None = None) -> dict[str, Any]:
    r = await c.post("/graphql", json={"query": q, "variables": v or {}})
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    if "errors" in body:
        raise RuntimeError(body["errors"])
    return body["data"]  # type: ignore[no-any-return]


async def load(c: httpx.AsyncClient, rate: int, stop: asyncio.Event, sent: list[int]) -> None:
    """``rate`` jobs/s as a bulk submit every 100 ms; a tick does not wait for the previous
    request (up to 16 in flight), so a slow answer does not lower the rate."""
    per_tick = max(1, rate // 10)
    body = {"jobs": [{"queue": "load", "jobType": "demo.noop", "payload": {}}
                     for _ in range(per_tick)]}
    room = asyncio.Semaphore(16)
    tasks: set[asyncio.Task[None]] = set()

    async def one() -> None:
        try:
            r = await c.post("/api/v1/jobs/bulk", json=body)
            if r.status_code < 300:
                sent[0] += per_tick
        finally:
            room.release()

    nxt = time.monotonic()
    while not stop.is_set():
        await room.acquire()
        t = asyncio.create_task(one())
        tasks.add(t)
        t.add_done_callback(tasks.discard)
        nxt += 0.1
        await asyncio.sleep(max(0.0, nxt - time.monotonic()))
    await asyncio.gather(*tasks)


async def sign_in(page: Page, key: str) -> None:
    await page.goto("/")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("navigation", name="Main").wait_for()


async def latency(browser: Any, base: str, key: str, dsn: str, rate: int,
                  rounds: int) -> dict[str, Any]:
    ctx = await browser.new_context(base_url=base, viewport={"width": 1400, "height": 900})
    flood, probe = await ctx.new_page(), await ctx.new_page()
    await probe.add_init_script(WS_SPY)
    await sign_in(flood, key)
    await flood.goto("/jobs")
    await sign_in(probe, key)
    samples: list[float] = []
    to_ws: list[float] = []
    stop = asyncio.Event()
    sent = [0]
    conn = await asyncpg.connect(dsn)
    async with httpx.AsyncClient(base_url=base, headers={"X-Api-Key": key}, timeout=60) as c:
        gen = asyncio.create_task(load(c, rate, stop, sent))
        t0 = time.monotonic()
        try:
            await asyncio.sleep(3)  # let the load reach its rate before measuring
            for _ in range(rounds):
                q = f"probe-{uuid.uuid4().hex[:8]}"
                await gql(c, "mutation($q: String!) { pauseQueue(queue: $q) { paused } }",
                          {"q": q})
                made = await gql(c, "mutation($in: [SubmitJobInput!]!) { submitMany(inputs: "
                                    "$in) { id } }",
                                 {"in": [{"queue": q, "jobType": "demo.noop", "payload": {}}
                                         for _ in range(PROBES)]})
                ids = [j["id"] for j in made["submitMany"]]
                await probe.goto(f"/jobs?queue={q}")
                await probe.wait_for_function(
                    "n => document.querySelectorAll('tr[data-job-id]').length >= n", arg=PROBES)
                await probe.evaluate(OBSERVE, ids)
                await gql(c, "mutation($q: String!) { resumeQueue(queue: $q) { paused } }",
                          {"q": q})
                await probe.wait_for_function(
                    "n => Object.keys(window.__done).length >= n", arg=PROBES, timeout=60_000)
                seen: dict[str, int] = await probe.evaluate("window.__done")
                ws: dict[str, int] = await probe.evaluate("window.__ws")
                rows = await conn.fetch("SELECT id::text, completed_at FROM jobs WHERE "
                                        "id = ANY($1::uuid[])", ids)
                for r in rows:
                    samples.append(seen[r["id"]] - r["completed_at"].timestamp() * 1000)
                    if r["id"] in ws:
                        to_ws.append(ws[r["id"]] - r["completed_at"].timestamp() * 1000)
            elapsed = time.monotonic() - t0
        finally:
            stop.set()
            await gen
            await conn.close()
    await ctx.close()
    return {"rate_target": rate, "rate_sent": round(sent[0] / elapsed), "probes": len(samples),
            "p50_ms": round(pct(samples, 50), 1), "p99_ms": round(pct(samples, 99), 1),
            "max_ms": round(max(samples), 1), "mean_ms": round(statistics.mean(samples), 1),
            "to_socket_p50_ms": round(pct(to_ws, 50), 1) if to_ws else None,
            "to_socket_p99_ms": round(pct(to_ws, 99), 1) if to_ws else None}


async def queues_page(browser: Any, base: str, key: str, dsn: str, n_jobs: int,
                      repeat: int) -> dict[str, Any]:
    now = int(time.time() * 1000) // 60_000 * 60_000
    day = 86_400_000
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ALTER TABLE jobs DISABLE TRIGGER jobs_inserted_events")
        await conn.execute(SEED_JOBS, n_jobs, now - day, day)
        await conn.execute(SEED_ROLLUPS, now - day, now)
        await conn.execute(SEED_HIST, now - day, now)
        await conn.execute("ALTER TABLE jobs ENABLE TRIGGER jobs_inserted_events")
        await conn.execute("ANALYZE")
        stored = await conn.fetchval("SELECT count(*) FROM jobs")
    finally:
        await conn.close()
    ctx = await browser.new_context(base_url=base, viewport={"width": 1400, "height": 900})
    page = await ctx.new_page()
    await sign_in(page, key)
    rows, counts = [], []
    for _ in range(repeat):
        await page.goto("/queues")  # a full page load: JS, session check, queries
        t = await page.evaluate(FIRST_ROW)
        rows.append(t["rows"])
        counts.append(t["counts"])
    await ctx.close()
    return {"jobs_stored": stored, "loads": repeat,
            "first_row_p50_ms": round(statistics.median(rows)), "first_row_max_ms": round(max(rows)),
            "counts_p50_ms": round(statistics.median(counts)), "counts_max_ms": round(max(counts))}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base_dir = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    home = Path(tempfile.mkdtemp(prefix="jobline-bench-dash-", dir=base_dir))
    home.chmod(0o755)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(JOBLINE_HOME=str(home), JOBLINE_PORT=str(port), JOBLINE_SHUTDOWN_GRACE_S="5")
    log = (home / "run.log").open("w")
    p = subprocess.Popen([sys.executable, "-m", "jobline", "run", "--processes",
                          str(args.processes)], env=env, stdout=log, stderr=subprocess.STDOUT,
                         cwd=ROOT)
    try:
        async def ready() -> bool:
            try:
                async with httpx.AsyncClient() as c:
                    return (await c.get(f"{base}/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_for(ready, 120, "jobline run ready")
        key = (home / "admin.key").read_text().strip()
        dsn = json.loads((home / "services.json").read_text())["database_url"]
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path="/usr/bin/chromium",
                                               args=CHROMIUM_ARGS)
            lat = await latency(browser, base, key, dsn, args.rate, args.rounds)
            print("commit -> DOM:", lat, flush=True)
            qp = await queues_page(browser, base, key, dsn, args.jobs, args.repeat)
            print("queues page:", qp, flush=True)
            await browser.close()
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=90)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()
        shutil.rmtree(home, ignore_errors=True)
    return {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "worker_processes": args.processes, "commit_to_dom": lat, "queues_page": qp}


def markdown(r: dict[str, Any]) -> str:
    lat, qp = r["commit_to_dom"], r["queues_page"]
    return "\n".join([
        "# Dashboard latency (bench/dashboard_latency.py)", "",
        f"Machine: {r['machine']['cpus']} CPUs, browser, API, workers ({r['worker_processes']} "
        "process), relay and stores on the same host.", "",
        "| measure | value |", "|---|---|",
        f"| load (target / sent) | {lat['rate_target']} / {lat['rate_sent']} jobs/s |",
        f"| commit -> DOM, probes | {lat['probes']} |",
        f"| commit -> DOM p50 | {lat['p50_ms']} ms |",
        f"| commit -> DOM p99 | {lat['p99_ms']} ms |",
        f"| commit -> DOM max | {lat['max_ms']} ms |",
        f"| of which commit -> message at the page's socket, p50 / p99 | "
        f"{lat['to_socket_p50_ms']} / {lat['to_socket_p99_ms']} ms |",
        f"| Queues page, jobs stored | {qp['jobs_stored']:,} |",
        f"| Queues page: first queue row, p50 / max of {qp['loads']} loads | "
        f"{qp['first_row_p50_ms']} / {qp['first_row_max_ms']} ms |",
        f"| Queues page: per-status counts, p50 / max | {qp['counts_p50_ms']} / "
        f"{qp['counts_max_ms']} ms |", ""])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    r = asyncio.run(run(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dashboard.json").write_text(json.dumps(r, indent=2) + "\n")
    (args.out / "dashboard.md").write_text(markdown(r))
    print(markdown(r))


if __name__ == "__main__":
    main()
