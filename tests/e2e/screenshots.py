"""Screenshots of every dashboard page, light and dark, into docs/img/ (docs/dashboard.md).

    make run   # in another terminal
    .venv/bin/python -m tests.e2e.screenshots --base http://127.0.0.1:8000 \\
        --key "$(cat .jobline/admin.key)" --seed

``--seed`` first submits the demo data of tests/e2e/seed.py, ``--traffic`` 400 mixed jobs,
``--unserved`` three jobs of a type no worker handles (the Queues page's alert, shot as
``queues-unserved``); ``--only queues-unserved`` takes just the named pictures. Not a test: it
only takes pictures.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from jobline.testing import wait_until

from .conftest import CHROMIUM, CHROMIUM_ARGS
from .seed import gql, seed, traffic

OUT = Path(__file__).resolve().parents[2] / "docs" / "img"


async def _shoot(page: Page, name: str, scheme: str) -> None:
    await page.wait_for_load_state("networkidle")
    await page.screenshot(path=str(OUT / f"dashboard-{name}-{scheme}.png"))
    print(f"docs/img/dashboard-{name}-{scheme}.png")


async def _drained(c: httpx.AsyncClient) -> bool:
    m = await gql(c, "{ queueMetrics { ready leased delayed } }")
    return sum(q["ready"] + q["leased"] for q in m["queueMetrics"]) <= 1


async def _unserved(c: httpx.AsyncClient) -> None:
    """Three ``resize_avatar`` jobs in queue ``avatars`` and no worker with that handler: the
    stack's worker hands one back, which lists the type as unserved."""
    for user in (7, 8, 9):
        r = await c.post("/api/v1/jobs", json={"jobType": "resize_avatar", "queue": "avatars",
                                               "payload": {"userId": user}})
        r.raise_for_status()

    async def listed() -> bool:
        types = (await gql(c, "{ jobTypes { jobType unservedJobs } }"))["jobTypes"]
        return any(t["jobType"] == "resize_avatar" and t["unservedJobs"] >= 3 for t in types)

    await wait_until(listed, timeout=120, message="resize_avatar listed as unserved")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="http://127.0.0.1:8000")
    ap.add_argument("--key", required=True)
    ap.add_argument("--seed", action="store_true")
    ap.add_argument("--traffic", action="store_true", help="submit 400 mixed jobs and wait for them")
    ap.add_argument("--unserved", action="store_true",
                    help="submit jobs of a type no worker handles; adds queues-unserved")
    ap.add_argument("--only", help="comma-separated picture names (e.g. queues-unserved)")
    a = ap.parse_args()
    only = set(a.only.split(",")) if a.only else None

    def want(*names: str) -> bool:
        return only is None or any(n in only for n in names)

    async def shoot(page: Page, name: str, scheme: str) -> None:
        if want(name):
            await _shoot(page, name, scheme)

    OUT.mkdir(parents=True, exist_ok=True)
    async with httpx.AsyncClient(base_url=a.base, headers={"X-Api-Key": a.key}, timeout=30) as c:
        if a.seed:
            await seed(c)
        if a.traffic:
            await traffic(c)
            await wait_until(lambda: _drained(c), timeout=300, message="traffic done")
        if a.unserved:
            await _unserved(c)
        chain = await gql(c, '{ jobs(filter: {queue: "etl", jobType: "demo.noop"}, first: 1) '
                             "{ edges { node { id } } } }")
        chain_id = chain["jobs"]["edges"][0]["node"]["id"] if chain["jobs"]["edges"] else None
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for scheme in ("light", "dark"):
            ctx = await browser.new_context(base_url=a.base, color_scheme=scheme,  # type: ignore[arg-type]
                                            viewport={"width": 1400, "height": 900})
            page = await ctx.new_page()
            await page.goto("/")
            await shoot(page, "sign-in", scheme)
            await page.get_by_label("API key").fill(a.key)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("navigation", name="Main")).to_be_visible()
            pages = [("/queues", "queues"), ("/jobs", "jobs"),
                     ("/timeline?lanes=queue", "timeline"),
                     ("/timeline?lanes=queue&view=density", "timeline-density"),
                     ("/workers", "workers"),
                     ("/dead-letters", "dead-letters"), ("/charts", "charts"),
                     ("/schedules", "schedules"), ("/batches", "batches"),
                     ("/alerts", "alerts"),
                     # the admin analytics pages (issue 16): real figures need history, e.g.
                     # `jobline seed --jobs 1M --days 30` against the same stack first
                     ("/analytics", "analytics-summary"),
                     ("/analytics/queues", "analytics-queues"),
                     ("/analytics/failures", "analytics-failures"),
                     ("/analytics/retries", "analytics-retries"),
                     ("/analytics/resources", "analytics-resources"),
                     ("/analytics/cost", "analytics-cost"),
                     ("/analytics/sla", "analytics-sla")]
            if chain_id:
                pages.append((f"/analytics/dependencies?job={chain_id}", "analytics-dependencies"))
            if a.unserved:
                pages.append(("/queues", "queues-unserved"))
            for path, name in pages:
                if not want(name):
                    continue
                await page.goto(path)
                await expect(page.get_by_role("heading", level=1)).to_be_visible()
                if name == "queues-unserved":
                    await expect(page.get_by_role("alert")).to_contain_text("resize_avatar")
                if name.startswith("analytics"):  # the page's data, then ECharts' first frame
                    try:
                        await page.wait_for_function(
                            "performance.getEntriesByType('mark')"
                            ".some((m) => m.name.endsWith(':data'))", timeout=30_000)
                    except PlaywrightTimeoutError:
                        print(f"{name}: no data after 30 s (an error or no history?)")
                    await page.wait_for_timeout(800)
                if name.startswith("timeline"):  # the canvas paints a few frames after the data
                    await page.wait_for_timeout(1500)
                await shoot(page, name, scheme)
            if chain_id and want("job-drawer", "job-drawer-graph"):
                await page.goto(f"/jobs/{chain_id}")
                drawer = page.get_by_role("dialog", name=re.compile(chain_id))
                await expect(drawer.get_by_role("figure", name="Dependency graph")).to_be_visible()
                await shoot(page, "job-drawer", scheme)
                await drawer.get_by_role("figure", name="Dependency graph").scroll_into_view_if_needed()
                await shoot(page, "job-drawer-graph", scheme)
            if want("dead-letters-confirm"):
                await page.goto("/dead-letters")
                await page.get_by_role("button", name="Retry all").click()
                await expect(page.get_by_role("dialog", name="Retry dead letters")).to_be_visible()
                await shoot(page, "dead-letters-confirm", scheme)
            await ctx.close()
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
