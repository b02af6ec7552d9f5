"""End-to-end fixtures: a real ``jobline run`` stack (embedded PostgreSQL + Valkey, API serving the
built dashboard, workers with the demo app, scheduler, relay and consumers) and headless Chromium
driven by Playwright (Debian's /usr/bin/chromium; Playwright cannot download browsers here).

Every wait is on a condition (Playwright's auto-waiting ``expect`` or ``wait_until``), never a sleep.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from jobline.testing import wait_until

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("JOBLINE_CHROMIUM", "/usr/bin/chromium")
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]

# Generous: a loaded 2-core machine; every wait still ends as soon as its condition holds.
expect.set_options(timeout=30_000)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.timeout(240))


@dataclass
class Stack:
    base: str
    admin_key: str
    dev_key: str
    home: Path

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=30,
                                 headers={"X-Api-Key": key or self.admin_key})

    async def gql(self, query: str, variables: dict[str, Any] | None = None,
                  key: str | None = None) -> dict[str, Any]:
        async with self.client(key) as c:
            r = await c.post("/graphql", json={"query": query, "variables": variables or {}})
            r.raise_for_status()
            body: dict[str, Any] = r.json()
            assert "errors" not in body, body
            return body["data"]  # type: ignore[no-any-return]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _ready(base: str) -> bool:
    try:
        async with httpx.AsyncClient() as c:
            return (await c.get(f"{base}/readyz")).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="session")
def stack_home() -> Iterator[Path]:
    # Not pytest's tmp dir: PostgreSQL runs as another user and must traverse the path.
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    d = Path(tempfile.mkdtemp(prefix="jobline-e2e-", dir=base))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
async def stack(stack_home: Path) -> AsyncIterator[Stack]:
    if not (ROOT / "jobline" / "api" / "dashboard_dist" / "index.html").is_file():
        pytest.fail("the dashboard is not built: make dashboard")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(JOBLINE_HOME=str(stack_home), JOBLINE_PORT=str(port),
               JOBLINE_SHUTDOWN_GRACE_S="5", JOBLINE_GRAPHQL_STATS_INTERVAL_S="1")
    log = (stack_home / "run.log").open("w")
    # Popen returns at once (the stack runs until the session ends); not a blocking call.
    p = subprocess.Popen([sys.executable, "-m", "jobline", "run", "--processes", "1"],  # noqa: ASYNC220
                         env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        await wait_until(lambda: _ready(base), timeout=120, message="jobline run ready")
        admin_key = (stack_home / "admin.key").read_text().strip()
        keys = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jobline", "keys", "create", "--role", "developer", "--name",
            "e2e developer", env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE)
        out, _ = await keys.communicate()
        assert keys.returncode == 0
        dev_key = out.decode().strip().splitlines()[-1].strip()
        yield Stack(base, admin_key, dev_key, stack_home)
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=90)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
    printed = (stack_home / "run.log").read_text()
    assert f"dashboard: http://127.0.0.1:{port}/" in printed


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        await b.close()


@pytest.fixture
async def page(browser: Browser, stack: Stack) -> AsyncIterator[Page]:
    # Reduced motion: dialogs appear without a fade, so axe measures their final colours.
    ctx = await browser.new_context(base_url=stack.base, accept_downloads=True,
                                    reduced_motion="reduce",
                                    viewport={"width": 1400, "height": 900})
    pg = await ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    await ctx.close()
    assert not errors, f"uncaught errors in the page: {errors}"


async def sign_in(page: Page, key: str, path: str = "/") -> None:
    await page.goto(path)
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("navigation", name="Main")).to_be_visible()


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it is now."""
    if not AXE.is_file():
        pytest.fail("axe-core is missing: `make test-frontend` (or `npm ci` in frontend/)")
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"][:5]]} for v in bad]


def fmt(violations: list[dict[str, Any]]) -> str:
    return json.dumps(violations, indent=1)
