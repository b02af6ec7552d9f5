"""Timeline (Gantt) rendering with 10,000 bars in view, in real headless Chromium against a real
``jobline run`` stack on this machine.

Seeds ``--bars`` started jobs over a 10-minute window (one INSERT ... SELECT, as in
bench/graphql_latency.py; 6 queues = 6 lanes), opens ``/timeline?view=bars`` on that window and
measures (``--repeat`` page loads, medians reported):

- load: navigation until the page says every bar is in view (10 GraphQL pages of 1,000);
- settle: from then until the chart's progressive painting is over (3 frames in a row < 34 ms);
- interaction: frame times (requestAnimationFrame deltas) while the wheel zooms in and out 20
  times and the plot is dragged (pan): p50 / p95 / max, and the share of frames over 50 ms;
- the same window in the density view (server-side counts), for comparison.

    python bench/timeline_render.py                 # 10,000 bars, 3 loads
Writes bench/results/timeline.{json,md}. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from dashboard_latency import CHROMIUM_ARGS, free_port, sign_in, wait_for
from graphql_latency import SEED_JOBS, pct
from playwright.async_api import Page, async_playwright

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"

FRAMES = """() => {
  window.__frames = [];
  let last = performance.now();
  const tick = (t) => { window.__frames.push(t - last); last = t; if (window.__framing) requestAnimationFrame(tick); };
  window.__framing = true;
  requestAnimationFrame(tick);
}"""


def local(ms: int) -> str:
    # the page's datetime-local inputs: the browser's zone is UTC here (TZ=UTC below)
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


async def interact(page: Page) -> dict[str, float]:
    chart = page.get_by_role("img", name=re.compile("^Gantt chart"))
    box = await chart.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 3
    canvas = chart.locator("canvas")
    view = "el => [Number(el.dataset.viewFrom), Number(el.dataset.viewTo)]"
    before = await canvas.evaluate(view)
    await page.evaluate(FRAMES)
    await page.mouse.move(x, y)
    seen = []
    for i in range(20):  # zoom in 10 steps, out 10
        await page.mouse.wheel(0, -240 if i < 10 else 240)
        await page.wait_for_timeout(60)
        if i in (9, 19):
            seen.append(await canvas.evaluate(view))
    zoomed, unzoomed = seen
    await page.mouse.down()
    for i in range(20):  # drag to pan
        await page.mouse.move(x - 15 * i, y)
        await page.wait_for_timeout(30)
    await page.mouse.up()
    panned = await canvas.evaluate(view)
    # the interaction really moved the view (a frame time of an idle page says nothing)
    assert zoomed[1] - zoomed[0] < 0.5 * (before[1] - before[0]), (before, zoomed)
    assert panned[0] > unzoomed[0], (unzoomed, panned)  # dragged left: later times in view
    await page.wait_for_timeout(300)
    frames: list[float] = await page.evaluate("window.__framing = false, window.__frames")
    frames = frames[1:]
    return {"frames": len(frames), "p50_ms": round(pct(frames, 50), 1),
            "p95_ms": round(pct(frames, 95), 1), "max_ms": round(max(frames), 1),
            "over_50ms_share": round(sum(f > 50 for f in frames) / len(frames), 3)}


async def measure(page: Page, url: str, done_text: str) -> dict[str, Any]:
    t0 = time.monotonic()
    await page.goto(url)
    await page.get_by_text(done_text).wait_for(timeout=120_000)
    loaded = time.monotonic()
    # Settled once 3 frames in a row took < 34 ms (the canvas paints on the next frame).
    await page.evaluate("""() => new Promise((ok) => {
      let last = performance.now(), calm = 0;
      const tick = (t) => { calm = t - last < 34 ? calm + 1 : 0; last = t;
                            if (calm >= 3) ok(true); else requestAnimationFrame(tick); };
      requestAnimationFrame(tick);
    })""")
    painted = time.monotonic()
    inter = await interact(page)
    return {"load_ms": round((loaded - t0) * 1000), "render_ms": round((painted - loaded) * 1000),
            **inter}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base_dir = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    home = Path(tempfile.mkdtemp(prefix="jobline-bench-timeline-", dir=base_dir))
    home.chmod(0o755)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(JOBLINE_HOME=str(home), JOBLINE_PORT=str(port), JOBLINE_SHUTDOWN_GRACE_S="5",
               TZ="UTC")
    log = (home / "run.log").open("w")
    p = subprocess.Popen([sys.executable, "-m", "jobline", "run", "--processes", "1"], env=env,
                         stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
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
        start = (int(time.time() * 1000) // 60_000 - 30) * 60_000
        span = 10 * 60_000
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("ALTER TABLE jobs DISABLE TRIGGER jobs_inserted_events")
            await conn.execute(SEED_JOBS, args.bars, start, span)
            await conn.execute("ALTER TABLE jobs ENABLE TRIGGER jobs_inserted_events")
            await conn.execute("ANALYZE jobs")
        finally:
            await conn.close()
        window = f"from={local(start)}&to={local(start + span + 60_000)}&lanes=queue"
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path="/usr/bin/chromium",
                                               args=CHROMIUM_ARGS)
            ctx = await browser.new_context(base_url=base, viewport={"width": 1400, "height": 900},
                                            timezone_id="UTC")
            page = await ctx.new_page()
            await sign_in(page, key)
            bars = [await measure(page, f"/timeline?{window}&view=bars",
                                  f"{args.bars:,} started jobs in view")
                    for _ in range(args.repeat)]
            dens = [await measure(page, f"/timeline?{window}&view=density",
                                  f"Density: {args.bars:,} started jobs")
                    for _ in range(args.repeat)]
            await browser.close()
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=90)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()
        shutil.rmtree(home, ignore_errors=True)

    def med(runs: list[dict[str, Any]]) -> dict[str, Any]:
        return {k: statistics.median(r[k] for r in runs) for k in runs[0]}

    return {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "bars": args.bars, "loads": args.repeat, "bars_view": med(bars),
            "density_view": med(dens), "runs": {"bars": bars, "density": dens}}


def markdown(r: dict[str, Any]) -> str:
    rows = ["# Timeline rendering (bench/timeline_render.py)", "",
            f"{r['bars']:,} started jobs in a 10-minute window, 6 lanes; medians of {r['loads']} "
            f"page loads; {r['machine']['cpus']} CPUs, browser and stack on one host.", "",
            "| view | load (10 requests) | settle after load | frames during zoom/pan | "
            "frame p50 / p95 / max | frames > 50 ms |", "|---|---|---|---|---|---|"]
    for name, v in (("bars", r["bars_view"]), ("density", r["density_view"])):
        rows.append(f"| {name} | {v['load_ms']:.0f} ms | {v['render_ms']:.0f} ms | "
                    f"{v['frames']:.0f} | {v['p50_ms']} / {v['p95_ms']} / {v['max_ms']} ms | "
                    f"{100 * v['over_50ms_share']:.1f} % |")
    return "\n".join(rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    r = asyncio.run(run(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "timeline.json").write_text(json.dumps(r, indent=2) + "\n")
    (args.out / "timeline.md").write_text(markdown(r))
    print(markdown(r))


if __name__ == "__main__":
    main()
