"""Screenshots of every dashboard page, light and dark, into docs/img/ (docs/dashboard.md).

    make run   # in another terminal
    .venv/bin/python -m tests.e2e.screenshots --base http://127.0.0.1:8000 \\
        --key "$(cat .jobline/admin.key)" --seed

``--seed`` first submits the demo data of tests/e2e/seed.py, ``--traffic`` 400 mixed jobs. Not a test: it only takes pictures.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright, expect

from jobline.testing import wait_until

from .conftest import CHROMIUM, CHROMIUM_ARGS
from .seed import gql, seed, traffic

OUT = Path(__file__).resolve().parents[2] / "docs" / "img"


async def shoot(page: Page, name: str, scheme: str) -> None:
    await page.wait_for_load_state("networkidle")
    await page.screenshot(path=str(OUT / f"dashboard-{name}-{scheme}.png"))
    print(f"docs/img/dashboard-{name}-{scheme}.png")


async def _drained(c: httpx.AsyncClient) -> bool:
    m = await gql(c, "{ queueMetrics { ready leased delayed } }")
    return sum(q["ready"] + q["leased"] for q in m["queueMetrics"]) <= 1


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="http://127.0.0.1:8000")
    ap.add_argument("--key", required=True)
    ap.add_argument("--seed", action="store_true")
    ap.add_argument("--traffic", action="store_true", help="submit 400 mixed jobs and wait for them")
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    async with httpx.AsyncClient(base_url=a.base, headers={"X-Api-Key": a.key}, timeout=30) as c:
        if a.seed:
            await seed(c)
        if a.traffic:
            await traffic(c)
            await wait_until(lambda: _drained(c), timeout=300, message="traffic done")
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
            for path, name in (("/queues", "queues"), ("/jobs", "jobs"),
                               ("/timeline?lanes=queue", "timeline"),
                               ("/timeline?lanes=queue&view=density", "timeline-density"),
                               ("/workers", "workers"),
                               ("/dead-letters", "dead-letters"), ("/charts", "charts"),
                               ("/schedules", "schedules"), ("/batches", "batches")):
                await page.goto(path)
                await expect(page.get_by_role("heading", level=1)).to_be_visible()
                if name.startswith("timeline"):  # the canvas paints a few frames after the data
                    await page.wait_for_timeout(1500)
                await shoot(page, name, scheme)
            if chain_id:
                await page.goto(f"/jobs/{chain_id}")
                drawer = page.get_by_role("dialog", name=re.compile(chain_id))
                await expect(drawer.get_by_role("figure", name="Dependency graph")).to_be_visible()
                await shoot(page, "job-drawer", scheme)
                await drawer.get_by_role("figure", name="Dependency graph").scroll_into_view_if_needed()
                await shoot(page, "job-drawer-graph", scheme)
            await page.goto("/dead-letters")
            await page.get_by_role("button", name="Retry all").click()
            await expect(page.get_by_role("dialog", name="Retry dead letters")).to_be_visible()
            await shoot(page, "dead-letters-confirm", scheme)
            await ctx.close()
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
