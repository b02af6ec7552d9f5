"""The AI pieces of the dashboard (issue 17) in Chromium against a real ``jobline run`` stack.

* **Predict success** on the submit form: a small history made by the stack's own worker
  (``demo.flaky`` jobs in queue ``ai-predict``, a third of them failing their first attempt and
  succeeding on the retry, so nothing is dead-lettered for the other tests), the model trained
  through ``POST /api/v1/ai/train``, then a developer asks from the form and sees the same
  probability the API gives for that job.
* **Capacity** of a queue: three weeks of hourly rollups written straight into
  ``job_rollups_hour`` for queue ``ai-capacity`` (no other test uses it; months of history cannot
  be made in real time), plus a few real jobs so the queue is listed; an admin opens the drawer,
  sees the forecast chart, the backtest and the workers per day for 7 and 30 days, and gets a
  scaling recommendation.

Screenshots land in ``/tmp/ai-ui-shots/``. axe finds no serious or critical violation.
"""

from __future__ import annotations

import json
import math
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Page, expect

from jobline.testing import wait_until

from .conftest import Stack, axe_violations, fmt, sign_in

SHOTS = Path("/tmp/ai-ui-shots")
SUBMIT_MANY = "mutation($in: [SubmitJobInput!]!) { submitMany(inputs: $in) { id } }"
COUNTS = "{ queues { name counts { completed pending processing failed deadLetter } } }"
PREDICT = """query($t: String!, $q: String, $p: JSON!) {
  predictSuccess(jobType: $t, queue: $q, payload: $p) { successProbability model { version } } }"""
N_JOBS = 600


async def _counts(stack: Stack, queue: str) -> dict[str, int]:
    for q in (await stack.gql(COUNTS))["queues"]:
        if q["name"] == queue:
            return q["counts"]  # type: ignore[no-any-return]
    return {}


async def _train_history(stack: Stack) -> None:
    """600 jobs the worker runs for real: ``failTimes`` 1 on every third job (with a large
    ``sizeMb``) fails the first attempt, the retry succeeds."""
    jobs = [{"queue": "ai-predict", "jobType": "demo.flaky", "maxAttempts": 2,
             "payload": {"failTimes": 1 if i % 3 == 0 else 0, "failWith": "timeout",
                         "sizeMb": 5000 + i if i % 3 == 0 else 10 + i % 50}}
            for i in range(N_JOBS)]
    # three waves, each run to the end: the newest 20% (the holdout) then holds first attempts
    # of both outcomes, not only the last wave's successful retries
    for i in range(0, N_JOBS, 200):
        await stack.gql(SUBMIT_MANY, {"in": jobs[i:i + 200]})

        async def wave_done(n: int = i + 200) -> bool:
            return (await _counts(stack, "ai-predict")).get("completed") == n

        await wait_until(wave_done, timeout=180, message=f"{i + 200} ai-predict jobs completed")
    async with stack.client() as c:
        r = await c.post("/api/v1/ai/train", json={"days": 1})
    assert r.status_code == 200, r.text


@pytest.fixture(autouse=True)
def shots_dir() -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)


async def test_predict_success_on_the_submit_form(page: Page, stack: Stack) -> None:
    await _train_history(stack)
    payload = {"failTimes": 1, "failWith": "timeout", "sizeMb": 5400}
    expected = (await stack.gql(PREDICT, {"t": "demo.flaky", "q": "ai-predict", "p": payload},
                                key=stack.dev_key))["predictSuccess"]

    await sign_in(page, stack.dev_key, "/jobs")
    await page.get_by_role("button", name="Submit job").click()
    form = page.get_by_role("form", name="Submit a job")
    await form.get_by_label("Queue").fill("ai-predict")
    await form.get_by_label("Job type").fill("demo.flaky")
    await form.get_by_label("Payload (JSON)").fill(json.dumps(payload))
    await form.get_by_role("button", name="Predict success").click()
    status = page.get_by_role("status", name="Success prediction")
    shown = f"{expected['successProbability'] * 100:.0f}%"
    p = expected["successProbability"]
    if p >= 0.995 or p <= 0.005:
        shown = f"{p * 100:.1f}%"
    await expect(status.get_by_test_id("success-probability")).to_have_text(shown)
    await expect(status).to_contain_text(
        re.compile(rf"model v{expected['model']['version']} · ROC-AUC \d\.\d{{3}}"))
    await expect(status.get_by_role("list", name="Reasons")).to_be_visible()
    await page.screenshot(path=str(SHOTS / "predict-success.png"))
    bad = await axe_violations(page)
    assert not bad, f"axe on the submit form with a prediction:\n{fmt(bad)}"
    # predicting submitted nothing
    assert (await _counts(stack, "ai-predict")).get("completed") == N_JOBS
    assert (await _counts(stack, "ai-predict")).get("pending") == 0


async def _capacity_history(stack: Stack) -> None:
    """Three weeks of hourly submissions (a day shape, quieter weekends) for ``ai-capacity``."""
    dsn = json.loads((stack.home / "services.json").read_text())["database_url"]
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    rnd = random.Random(17)
    rows = []
    for h in range(21 * 24, 0, -1):
        at = now - timedelta(hours=h)
        base = 60 + 50 * math.sin(2 * math.pi * (at.hour - 6) / 24) * (at.hour >= 6)
        if at.weekday() >= 5:
            base *= 0.5
        n = max(0, int(base + rnd.gauss(0, 8)))
        rows.append((at, "ai-capacity", "demo.sleep", n, n, n * 400))
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "INSERT INTO job_rollups_hour (at, queue_name, job_type, submitted, completed, "
            "duration_sum_ms) VALUES ($1, $2, $3, $4, $5, $6)", rows)
    finally:
        await conn.close()
    # real jobs, so the queue exists for the Queues page
    await stack.gql(SUBMIT_MANY, {"in": [{"queue": "ai-capacity", "jobType": "demo.sleep",
                                          "payload": {"ms": 50}} for _ in range(5)]})

    async def done() -> bool:
        return (await _counts(stack, "ai-capacity")).get("completed") == 5

    await wait_until(done, timeout=90, message="ai-capacity jobs completed")


async def test_capacity_drawer_forecast_and_scaling_advice(page: Page, stack: Stack) -> None:
    await _capacity_history(stack)
    await page.set_viewport_size({"width": 1400, "height": 1500})  # the whole drawer in a shot
    await sign_in(page, stack.admin_key, "/queues")
    row = page.get_by_role("row", name=re.compile(r"^ai-capacity\b"))
    await expect(row).to_be_visible()
    await page.screenshot(path=str(SHOTS / "queues.png"))
    await row.get_by_role("link", name="Capacity of ai-capacity").click()
    await expect(page).to_have_url(re.compile(r"/queues/ai-capacity/capacity$"))
    drawer = page.get_by_role("dialog", name="Capacity of ai-capacity")
    chart = drawer.get_by_role(
        "img", name=re.compile("Forecast of hourly submissions to ai-capacity for the next 7 days"))
    await expect(chart).to_be_visible(timeout=120_000)  # Prophet fits twice on a loaded machine
    await expect(chart.locator("canvas")).to_have_count(1)
    days = drawer.get_by_role("table", name="Workers needed per day")
    await expect(days.locator("tbody tr")).to_have_count(7)
    backtest = drawer.get_by_role("table", name="Forecast backtest")
    await expect(backtest.get_by_text("used", exact=True)).to_have_count(1)
    await expect(backtest.get_by_role("row", name=re.compile(r"^Prophet \d+\.\d{3}"))).to_be_visible()
    await expect(drawer.get_by_label("Cost projection")).to_contain_text("over 7 days")

    form = drawer.get_by_role("form", name="Scaling advice for ai-capacity")
    await form.get_by_label("Target latency (ms)").fill("30000")
    await form.get_by_label("Avg duration (ms)").fill("400")
    await form.get_by_label("Pending jobs").fill("0")
    await form.get_by_role("button", name="Get scaling advice").click()
    advice = drawer.get_by_role("status", name="Scaling recommendation")
    await expect(advice.get_by_test_id("suggested-workers")).to_have_text(re.compile(r"^\d+$"))
    await expect(advice.get_by_role("list", name="Reasoning")).to_be_visible()
    await page.screenshot(path=str(SHOTS / "capacity-7-days.png"))
    bad = await axe_violations(page)
    assert not bad, f"axe on the capacity drawer:\n{fmt(bad)}"

    await drawer.get_by_text("30 days", exact=True).click()
    await expect(days.locator("tbody tr")).to_have_count(30, timeout=120_000)
    await expect(drawer.get_by_role(
        "img", name=re.compile("for the next 30 days"))).to_be_visible()
    await page.screenshot(path=str(SHOTS / "capacity-30-days.png"))

    # the same advice as the API gives for the same inputs
    got: dict[str, Any] = (await stack.gql(
        """query { scalingRecommendation(queue: "ai-capacity", targetLatencyMs: 30000,
           averageJobDurationMs: 400, pendingJobs: 0) { suggestedWorkers } }"""))["scalingRecommendation"]
    await expect(advice.get_by_test_id("suggested-workers")).to_have_text(
        str(got["suggestedWorkers"]))
    await page.keyboard.press("Escape")
    await expect(page).to_have_url(re.compile(r"/queues$"))
