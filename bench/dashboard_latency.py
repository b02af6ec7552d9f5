"""Dashboard benchmark in real headless Chromium against a real ``jobline run`` stack.

1. Commit -> DOM latency under load: a generator submits ``--rate`` jobs/s (demo.noop, REST bulk
   every 100 ms, up to 64 requests in flight) to queue ``load`` while a second tab shows the
   unfiltered Jobs explorer (every event of the flood reaches that page). Each round pauses a
   fresh probe queue, submits 50 probe jobs to it, opens ``/jobs?queue=<probe>`` (rows shown
   PENDING) and installs a MutationObserver; then resumes the queue. A probe's latency is from
   its ``completed_at`` (set in the completing transaction, so slightly before its commit: the
   figure errs high) to the moment its row's status became COMPLETED in the DOM (all clocks are
   this machine's). Stage by stage, per probe: the Redis stream entry of its jobs.completed (the
   entry id is Redis's clock at the relay's XADD; read back after the round), the message to a
   second, Python subscriber of the page's own subscription (out of the API; its timestamps
   share this process's event loop with the load generator and Playwright, so they err high
   under load), the message at the page's socket, the DOM. Also: the rate the API accepted and
   the rate the workers completed (achieved, not assumed), the outbox backlog twice a second,
   and the relay's publishes as seen on the stream (passes/s, events per pass, time between
   passes). ``--runs`` runs (fresh flood each), medians reported, each run kept.
2. Queues page time to data with ``--jobs`` stored jobs (inserted with one INSERT ... SELECT, as in
   bench/graphql_latency.py): a fresh page load of ``/queues`` until the first queue row is in the
   DOM (live metrics) and until the per-status counts arrived; p50/max of ``--repeat`` loads.
   ``--jobs 0`` skips it.

    python bench/dashboard_latency.py                  # full: 1,000 jobs/s x 3 runs, 1M jobs
    python bench/dashboard_latency.py --rate 1000 --rounds 3 --runs 1 --jobs 0   # quick look
Writes bench/results/dashboard.{json,md} (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
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
import redis.asyncio as aioredis
import websockets
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
    request (up to 64 in flight), so a slow answer does not lower the rate (``sent`` counts
    what the API accepted: the achieved rate is reported, not assumed)."""
    per_tick = max(1, rate // 10)
    body = {"jobs": [{"queue": "load", "jobType": "demo.noop", "payload": {}}
                     for _ in range(per_tick)]}
    room = asyncio.Semaphore(64)
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


# the Jobs page's subscription (frontend/src/live/documents.ts, JobStatusEvents)
WS_SUB = ("subscription($q: String!) { jobEventBatches(filter: {queue: $q}, windowMs: 20) "
          "{ events { type jobId data } } }")


async def ws_listener(base: str, key: str, queue: str, seen: dict[str, float],
                      ready: asyncio.Event) -> None:
    """A second subscriber outside the browser (graphql-transport-ws, the page's own query
    shape): when each probe's jobs.completed left the API, minus the browser's share."""
    url = base.replace("http", "ws", 1) + "/graphql"
    # no keepalive pings: on a saturated machine a late pong closed the socket mid-round
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol(
            "graphql-transport-ws")], max_size=None, ping_interval=None,
            open_timeout=60) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"apiKey": key}}))
        await ws.recv()  # connection_ack
        await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                  "payload": {"query": WS_SUB, "variables": {"q": queue}}}))
        ready.set()
        async for raw in ws:
            now = time.time() * 1000
            msg = json.loads(raw)
            if msg.get("type") != "next":
                raise RuntimeError(f"probe subscription: {msg}")
            for ev in (msg["payload"].get("data") or {}).get("jobEventBatches", {}).get(
                    "events", []):
                if ev["type"] == "jobs.completed":
                    seen.setdefault(ev["jobId"], now)


async def stream_times(r: aioredis.Redis, ids: set[str], lo_ms: int, hi_ms: int
                       ) -> dict[str, int]:
    """When the relay put each probe's jobs.completed on the Redis stream: the entry id's
    milliseconds (Redis's clock at the XADD, the same host's). Read back after the round, so the
    measurement costs the stack nothing while it runs."""
    keys = [k async for k in r.scan_iter(match="*:events", _type="stream")]
    out: dict[str, int] = {}
    needles = {i.encode(): i for i in ids}
    for k in keys:
        cur = f"{lo_ms}-0"
        while True:
            entries = await r.xrange(k, min=cur, max=f"{hi_ms}-0", count=5000)
            for eid, fields in entries:
                for raw in fields.values():
                    if b'"jobs.completed"' not in raw:
                        continue
                    for needle, jid in needles.items():
                        if needle in raw and jid not in out:
                            out[jid] = int(eid.split(b"-")[0])
            if len(entries) < 5000:
                break
            ms, seq = entries[-1][0].split(b"-")
            cur = f"{int(ms)}-{int(seq) + 1}"
    return out


async def relay_passes(r: aioredis.Redis, lo_ms: int, hi_ms: int) -> dict[str, Any] | None:
    """The relay's publishes seen from the stream: entries added by one publish (one script
    call) carry the same or the next millisecond, so a gap of 2 ms or more between neighbouring
    entries starts a new pass. Gives passes/s, events per pass and the time between passes,
    which is what a probe waits for on top of its own pass."""
    keys = [k async for k in r.scan_iter(match="*:events", _type="stream")]
    stamps: list[int] = []
    for k in keys:
        cur = f"{lo_ms}-0"
        while True:
            entries = await r.xrange(k, min=cur, max=f"{hi_ms}-0", count=10000)
            stamps += [int(eid.split(b"-")[0]) for eid, _ in entries]
            if len(entries) < 10000:
                break
            ms, seq = entries[-1][0].split(b"-")
            cur = f"{int(ms)}-{int(seq) + 1}"
    if len(stamps) < 2:
        return None
    stamps.sort()
    starts, sizes = [stamps[0]], [1]
    for a, b in itertools.pairwise(stamps):
        if b - a >= 2:
            starts.append(b)
            sizes.append(1)
        else:
            sizes[-1] += 1
    gaps = [float(b - a) for a, b in itertools.pairwise(starts)]
    secs = max(1.0, (stamps[-1] - stamps[0]) / 1000)
    return {"events_per_s": round(len(stamps) / secs), "passes_per_s": round(len(starts) / secs, 1),
            "events_per_pass": stats([float(x) for x in sizes]),
            "ms_between_passes": stats(gaps)}


async def sample_lag(c: httpx.AsyncClient, stop: asyncio.Event, out: list[dict[str, Any]]
                     ) -> None:
    """The outbox backlog (committed, not yet on the bus) twice a second."""
    while not stop.is_set():
        try:
            r = await c.get("/api/v1/events/lag")
            if r.status_code == 200:
                out.append(r.json()["outbox"])
        except httpx.HTTPError:
            pass
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def _have_all(seen: dict[str, float], ids: list[str], task: asyncio.Task[None]) -> bool:
    return task.done() or all(i in seen for i in ids)


def stats(xs: list[float]) -> dict[str, float] | None:
    if not xs:
        return None
    return {"n": len(xs), "p50": round(pct(xs, 50), 1), "p95": round(pct(xs, 95), 1),
            "p99": round(pct(xs, 99), 1), "max": round(max(xs), 1)}


async def latency(browser: Any, base: str, key: str, dsn: str, redis_url: str, rate: int,
                  rounds: int) -> dict[str, Any]:
    ctx = await browser.new_context(base_url=base, viewport={"width": 1400, "height": 900})
    flood, probe = await ctx.new_page(), await ctx.new_page()
    await probe.add_init_script(WS_SPY)
    await sign_in(flood, key)
    await flood.goto("/jobs")
    await sign_in(probe, key)
    # per probe, ms after its completed_at: on the stream, out of the API (a Python
    # subscriber), at the page's socket, in the DOM
    stages: dict[str, list[float]] = {"stream": [], "api_ws": [], "browser_ws": [], "dom": []}
    stop = asyncio.Event()
    sent = [0]
    lags: list[dict[str, Any]] = []
    conn = await asyncpg.connect(dsn)
    red = aioredis.from_url(redis_url)
    async with httpx.AsyncClient(base_url=base, headers={"X-Api-Key": key}, timeout=60) as c:
        done0 = await conn.fetchval("SELECT count(*) FROM jobs WHERE queue_name = 'load' "
                                    "AND status = 'completed'")
        gen = asyncio.create_task(load(c, rate, stop, sent))
        lag_task = asyncio.create_task(sample_lag(c, stop, lags))
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
                api_seen: dict[str, float] = {}
                listening = asyncio.Event()
                listener = asyncio.create_task(ws_listener(base, key, q, api_seen, listening))
                await asyncio.wait_for(listening.wait(), 30)
                await probe.goto(f"/jobs?queue={q}")
                await probe.wait_for_function(
                    "n => document.querySelectorAll('tr[data-job-id]').length >= n", arg=PROBES)
                await probe.evaluate(OBSERVE, ids)
                await gql(c, "mutation($q: String!) { resumeQueue(queue: $q) { paused } }",
                          {"q": q})
                await probe.wait_for_function(
                    "n => Object.keys(window.__done).length >= n", arg=PROBES, timeout=60_000)
                # the Python subscriber may be served after the page: give it 10 s more
                with contextlib.suppress(TimeoutError):
                    await wait_for(functools.partial(_have_all, api_seen, ids, listener), 10,
                                   "subscriber")
                if listener.done() and listener.exception() is not None:
                    print("probe subscriber failed:", repr(listener.exception()), flush=True)
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listener
                seen: dict[str, int] = await probe.evaluate("window.__done")
                ws: dict[str, int] = await probe.evaluate("window.__ws")
                rows = await conn.fetch("SELECT id::text, completed_at FROM jobs WHERE "
                                        "id = ANY($1::uuid[])", ids)
                done_ms = {r["id"]: r["completed_at"].timestamp() * 1000 for r in rows}
                streamed = await stream_times(red, set(ids), int(min(done_ms.values())) - 1000,
                                              int(time.time() * 1000) + 1000)
                for jid, t in done_ms.items():
                    stages["dom"].append(seen[jid] - t)
                    for name, at in (("stream", streamed), ("api_ws", api_seen),
                                     ("browser_ws", ws)):
                        if jid in at:
                            stages[name].append(at[jid] - t)
            elapsed = time.monotonic() - t0
        finally:
            stop.set()
            await gen
            await lag_task
            done1 = await conn.fetchval("SELECT count(*) FROM jobs WHERE queue_name = 'load' "
                                        "AND status = 'completed'")
            passes = await relay_passes(red, int((time.time() - (time.monotonic() - t0)) * 1000)
                                        + 3000, int(time.time() * 1000))
            await conn.close()
            await red.aclose()
    await ctx.close()
    samples = stages["dom"]
    pend = [x["pending"] for x in lags]
    age = [x["oldestAgeMs"] for x in lags]
    return {"rate_target": rate, "rate_sent": round(sent[0] / elapsed),
            "rate_completed": round((done1 - done0) / elapsed), "seconds": round(elapsed, 1),
            "probes": len(samples),
            "p50_ms": round(pct(samples, 50), 1), "p95_ms": round(pct(samples, 95), 1),
            "p99_ms": round(pct(samples, 99), 1),
            "max_ms": round(max(samples), 1), "mean_ms": round(statistics.mean(samples), 1),
            "stages": {k: stats(v) for k, v in stages.items()},
            "relay_passes": passes,
            "outbox_pending": {"p50": pct(pend, 50), "max": max(pend)} if pend else None,
            "outbox_oldest_age_ms": {"p50": pct(age, 50), "max": max(age)} if age else None}


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the runs (a run: a fresh flood and its probe rounds); the runs
    themselves are kept under ``runs``."""
    def med(get: Any) -> Any:
        xs = [get(r) for r in runs]
        xs = [x for x in xs if x is not None]
        return round(statistics.median(xs), 1) if xs else None

    flat = ("rate_sent", "rate_completed", "probes", "p50_ms", "p95_ms", "p99_ms", "max_ms",
            "mean_ms")
    out: dict[str, Any] = {"rate_target": runs[0]["rate_target"], "runs_n": len(runs)}
    out |= {k: med(lambda r, k=k: r[k]) for k in flat}
    out["stages"] = {
        st: {q: med(lambda r, st=st, q=q: (r["stages"][st] or {}).get(q))
             for q in ("p50", "p95", "p99", "max")}
        for st in runs[0]["stages"]}
    out["runs"] = runs
    return out


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
        services = json.loads((home / "services.json").read_text())
        dsn = services["database_url"]
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path="/usr/bin/chromium",
                                               args=CHROMIUM_ARGS)
            runs = []
            for i in range(args.runs):
                load_before = os.getloadavg()[0]
                one = await latency(browser, base, key, dsn, services["redis_url"], args.rate,
                                    args.rounds)
                one["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
                print(f"commit -> DOM, run {i + 1}:", one, flush=True)
                runs.append(one)
            lat = median_run(runs)
            qp = (await queues_page(browser, base, key, dsn, args.jobs, args.repeat)
                  if args.jobs else None)
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


STAGES = (("stream", "commit -> on the Redis stream (relay)"),
          ("api_ws", "commit -> out of the API's websocket (a Python subscriber)"),
          ("browser_ws", "commit -> at the page's socket"),
          ("dom", "commit -> in the DOM"))


def markdown(r: dict[str, Any]) -> str:
    lat, qp = r["commit_to_dom"], r["queues_page"]
    out = [
        "# Dashboard latency (bench/dashboard_latency.py)", "",
        f"Machine: {r['machine']['cpus']} CPUs; browser, API, workers ({r['worker_processes']} "
        "processes), relay, stores and the load generator on the same host. Medians of "
        f"{lat['runs_n']} runs (each: the flood, then {lat['probes']:.0f} probes).", "",
        "| measure | value |", "|---|---|",
        f"| load: target / accepted / completed | {lat['rate_target']} / {lat['rate_sent']:.0f} / "
        f"{lat['rate_completed']:.0f} jobs/s |",
        f"| commit -> DOM p50 / p95 / p99 | {lat['p50_ms']} / {lat['p95_ms']} / "
        f"{lat['p99_ms']} ms |", "",
        "Where the time goes (ms after the job's `completed_at`, cumulative):", "",
        "| stage | p50 | p95 | p99 |", "|---|---|---|---|"]
    for key, name in STAGES:
        st = lat["stages"][key]
        out.append(f"| {name} | {st['p50']} | {st['p95']} | {st['p99']} |")
    out += ["", "Per run:", "",
            "| run | accepted / completed jobs/s | load avg 1 min (before, after) | "
            "p50 / p95 / p99 |", "|---|---|---|---|"]
    for i, one in enumerate(lat["runs"], 1):
        out.append(f"| {i} | {one['rate_sent']} / {one['rate_completed']} | "
                   f"{one['loadavg_1m'][0]}, {one['loadavg_1m'][1]} | {one['p50_ms']} / "
                   f"{one['p95_ms']} / {one['p99_ms']} ms |")
    if qp:
        out += ["", "| Queues page | value |", "|---|---|",
                f"| jobs stored | {qp['jobs_stored']:,} |",
                f"| first queue row, p50 / max of {qp['loads']} loads | "
                f"{qp['first_row_p50_ms']} / {qp['first_row_max_ms']} ms |",
                f"| per-status counts, p50 / max | {qp['counts_p50_ms']} / "
                f"{qp['counts_max_ms']} ms |"]
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3, help="latency runs; medians reported")
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
