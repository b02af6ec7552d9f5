"""The dashboard in real headless Chromium against a real ``jobline run`` stack: sign in, live
updates without reload, the job drawer, retry, dead-letter bulk retry + CSV, queue controls,
schedules, role-aware UI, and axe-core (no serious or critical violations) on each page."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from pathlib import Path
from typing import Any

from playwright.async_api import Locator, Page, expect

from jobline.testing import wait_until

from .conftest import Stack, axe_violations, fmt, sign_in

SUBMIT = "mutation($in: SubmitJobInput!) { submit(input: $in) { id } }"


async def submit(stack: Stack, **spec: Any) -> str:
    data = await stack.gql(SUBMIT, {"in": spec})
    return str(data["submit"]["id"])


async def job(stack: Stack, job_id: str) -> dict[str, Any]:
    data = await stack.gql("query($id: ID!) { job(id: $id) { status attempts } }",
                           {"id": job_id})
    return data["job"]  # type: ignore[no-any-return]


async def assert_accessible(page: Page, where: str) -> None:
    bad = await axe_violations(page)
    assert not bad, f"axe on {where}:\n{fmt(bad)}"


def queue_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def test_sign_in_rejects_a_wrong_key(page: Page, stack: Stack) -> None:
    await page.goto("/")
    await assert_accessible(page, "sign-in")
    await page.get_by_label("API key").fill("jl_not-a-real-key")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not valid")
    await expect(page.get_by_role("navigation", name="Main")).to_have_count(0)


async def test_submitted_job_goes_pending_to_completed_live(page: Page, stack: Stack) -> None:
    q = queue_name("e2e-live")
    await stack.gql("mutation($q: String!) { pauseQueue(queue: $q) { paused } }", {"q": q})
    await sign_in(page, stack.admin_key, f"/jobs?queue={q}")
    await page.evaluate("window.__sameDocument = true")

    # submit from the UI (the form a developer uses); it opens the new job's drawer
    await page.get_by_role("button", name="Submit job").click()
    form = page.get_by_role("dialog", name="Submit a job")
    await form.get_by_label("Queue").fill(q)
    await form.get_by_label("Job type").fill("demo.noop")
    await form.get_by_label("Payload (JSON)").fill('{"hello": "world", "password": "hunter2"}')
    await form.get_by_role("button", name="Submit", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}\?queue="))
    job_id = page.url.split("/jobs/")[1].split("?")[0]
    drawer = page.get_by_role("dialog", name=re.compile(job_id))
    await expect(drawer).to_be_visible()
    await expect(drawer.locator("[data-status]").first).to_have_attribute("data-status", "PENDING")
    await expect(drawer.get_by_label("Payload")).to_contain_text('"hello": "world"')
    await expect(drawer.get_by_label("Payload")).not_to_contain_text("hunter2")  # masked
    await assert_accessible(page, "job drawer")
    await page.keyboard.press("Escape")
    await expect(drawer).to_have_count(0)

    row = page.locator(f'tr[data-job-id="{job_id}"]')
    await expect(row.locator("[data-status]")).to_have_attribute("data-status", "PENDING")
    await assert_accessible(page, "jobs explorer")
    # the queue resumes; the row follows the job's events, no reload
    await stack.gql("mutation($q: String!) { resumeQueue(queue: $q) { paused } }", {"q": q})
    await expect(row.locator("[data-status]")).to_have_attribute("data-status", "COMPLETED")
    assert await page.evaluate("window.__sameDocument") is True

    # the drawer (keyboard: the row's link) shows the finished job and its attempt
    await row.get_by_role("link", name=job_id).press("Enter")
    drawer = page.get_by_role("dialog", name=re.compile(job_id))
    await expect(drawer.locator("[data-status]").first).to_have_attribute("data-status",
                                                                          "COMPLETED")
    await expect(drawer.get_by_label("Result")).to_contain_text('"ok": true')
    await expect(drawer.get_by_role("table", name="Attempt history").locator("tbody tr")
                 ).to_have_count(1)


async def test_deep_link_and_retry_a_failed_job(page: Page, stack: Stack) -> None:
    q = queue_name("e2e-retry")
    # fails once with a non-retryable error (dead-lettered), succeeds when run again
    job_id = await submit(stack, queue=q, jobType="demo.flaky", maxAttempts=3,
                          payload={"failTimes": 1, "failWith": "validation_error"})
    await wait_until(lambda: _status_is(stack, job_id, "DEAD_LETTER"), timeout=60,
                     message="job dead-lettered")
    await sign_in(page, stack.admin_key, f"/jobs/{job_id}")
    drawer = page.get_by_role("dialog", name=re.compile(job_id))
    await expect(drawer.locator("[data-status]").first).to_have_attribute("data-status",
                                                                          "DEAD_LETTER")
    await expect(drawer).to_contain_text("validation_error")
    await drawer.get_by_role("button", name="Retry").click()
    await expect(drawer.locator("[data-status]").first).to_have_attribute("data-status",
                                                                          "COMPLETED")
    await expect(drawer.get_by_role("table", name="Attempt history").locator("tbody tr")
                 ).to_have_count(2)
    assert (await job(stack, job_id))["status"] == "COMPLETED"
    # View similar: the explorer filtered by the job's type and error type, in the URL
    await drawer.get_by_role("button", name="View similar").click()
    await expect(page).to_have_url(re.compile(r"/jobs\?type=demo\.flaky&errorType=validation_error"))
    await expect(page.get_by_label("Job type")).to_have_value("demo.flaky")


async def _status_is(stack: Stack, job_id: str, status: str) -> bool:
    return (await job(stack, job_id))["status"] == status


async def _dlq_count(stack: Stack, q: str) -> int:
    data = await stack.gql("query($f: DlqFilterInput) { deadLetterCount(filter: $f) }",
                           {"f": {"queue": q}})
    return int(data["deadLetterCount"])


async def test_dead_letters_bulk_retry_by_filter_and_csv(page: Page, stack: Stack) -> None:
    qa, qb = queue_name("e2e-dlq-a"), queue_name("e2e-dlq-b")
    for q, n in ((qa, 3), (qb, 2)):
        for _ in range(n):
            await submit(stack, queue=q, jobType="demo.flaky", maxAttempts=1,
                         payload={"failTimes": 1, "failWith": "connection_refused"})
    await wait_until(lambda: _all_dead(stack, {qa: 3, qb: 2}), timeout=60,
                     message="dead letters in both queues")

    await sign_in(page, stack.admin_key, "/dead-letters")
    await page.get_by_label("Queue").fill(qa)
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page).to_have_url(re.compile(f"queue={qa}"))
    await expect(page.get_by_text("3 dead-lettered jobs match", exact=True)).to_be_visible()
    await expect(page.get_by_role("table", name="Dead-lettered jobs").locator("tbody tr")
                 ).to_have_count(3)
    # the root causes of the filtered queue: its three dead letters share one error template
    causes = page.get_by_role("table", name="Root-cause groups").locator("tbody tr")
    await expect(causes).to_have_count(1)
    await expect(causes.first).to_contain_text("connection_refused")
    await expect(causes.first.get_by_role("button", name=re.compile("^Retry group: 3 jobs of"))
                 ).to_be_visible()
    await assert_accessible(page, "dead letters")

    async with page.expect_download() as dl:
        await page.get_by_role("button", name="Export CSV").click()
    path = await (await dl.value).path()
    text = await asyncio.to_thread(Path(path).read_text, encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 3 and {r["queue"] for r in rows} == {qa}
    assert {r["errorType"] for r in rows} == {"connection_refused"}

    await page.get_by_role("button", name="Retry all").click()
    confirm = page.get_by_role("dialog", name="Retry dead letters")
    await expect(confirm).to_contain_text("Retry 3 dead-lettered jobs matching this filter?")
    await assert_accessible(page, "bulk confirmation")
    await confirm.get_by_role("button", name="Retry 3 jobs").click()
    await expect(page.get_by_role("status")).to_contain_text("Retried 3 jobs.")
    await expect(page.get_by_text("0 dead-lettered jobs match", exact=True)).to_be_visible()
    # only the filtered queue was retried; the other keeps its dead letters
    assert await _dlq_count(stack, qb) == 2
    await wait_until(lambda: _completed(stack, qa, 3), timeout=60, message="retried jobs ran")


async def _all_dead(stack: Stack, want: dict[str, int]) -> bool:
    return all([await _dlq_count(stack, q) == n for q, n in want.items()])


async def _completed(stack: Stack, q: str, n: int) -> bool:
    data = await stack.gql('query($q: String) { jobs(filter: {queue: $q, status: COMPLETED}) '
                           '{ edges { node { id } } } }', {"q": q})
    return len(data["jobs"]["edges"]) == n


async def _controls(stack: Stack, q: str) -> dict[str, Any]:
    data = await stack.gql("{ queues { name controls { paused maxInFlight rateLimit { limit } } } }")
    return next(x["controls"] for x in data["queues"] if x["name"] == q)


async def test_pause_resume_and_limits_of_a_queue(page: Page, stack: Stack) -> None:
    q = queue_name("e2e-pause")
    await submit(stack, queue=q, jobType="demo.noop", payload={})
    # a type no worker handles, submitted over REST: the stack's worker hands it back (not
    # dead-lettered) and the page names it in an alert and marks the queue's row
    nobody = queue_name("e2e.nobody")
    async with stack.client() as c:
        r = await c.post("/api/v1/jobs", json={"jobType": nobody, "queue": q, "payload": {}})
        assert r.status_code == 201, r.text
        orphan = r.json()["jobId"]

    async def listed_unserved() -> bool:
        data = await stack.gql("{ jobTypes { jobType unservedJobs unservedQueues } }")
        return any(t["jobType"] == nobody and t["unservedJobs"] == 1
                   and t["unservedQueues"] == [q] for t in data["jobTypes"])

    await wait_until(listed_unserved, timeout=60, message="unserved type listed")
    await sign_in(page, stack.admin_key, "/queues")
    row = page.locator(f'tr[data-queue="{q}"]')
    await expect(row).to_be_visible()
    await expect(page.get_by_role("alert")).to_contain_text(
        f"{nobody}: 1 job waiting in queue {q}, no running worker handles this type")
    await expect(row).to_contain_text(f"no worker: {nobody}")
    await assert_accessible(page, "queues")
    await stack.gql("mutation($id: ID!) { cancel(id: $id) { status } }", {"id": orphan})
    await row.get_by_role("button", name=f"Pause {q}").click()
    await expect(row.get_by_role("button", name=f"Resume {q}")).to_be_visible()
    await expect(row.get_by_text("paused", exact=True)).to_be_visible()
    assert (await _controls(stack, q))["paused"] is True
    await row.get_by_role("button", name=f"Resume {q}").click()
    await expect(row.get_by_role("button", name=f"Pause {q}")).to_be_visible()
    assert (await _controls(stack, q))["paused"] is False

    await row.get_by_role("button", name="Limits…").click()
    dialog = page.get_by_role("dialog", name=f"Limits for queue {q}")
    await dialog.get_by_label("Rate limit (jobs per window)").fill("7")
    await dialog.get_by_label("Concurrency cap (max in flight)").fill("3")
    await dialog.get_by_role("button", name="Save limits").click()
    await expect(row).to_contain_text("7/1000 ms · cap 3")
    assert await _controls(stack, q) == {"paused": False, "maxInFlight": 3,
                                         "rateLimit": {"limit": 7}}
    # health explains its rule on hover/focus
    await row.get_by_label(re.compile(r"^healthy: ")).hover()
    await expect(page.get_by_role("tooltip")).to_contain_text("Healthy: not paused")


async def test_create_a_schedule(page: Page, stack: Stack) -> None:
    name = queue_name("e2e-nightly")
    await sign_in(page, stack.admin_key, "/schedules")
    await page.get_by_role("button", name="New schedule").click()
    form = page.get_by_role("dialog", name="New schedule")
    await form.get_by_label("Name").fill(name)
    await form.get_by_label("Queue").fill("reports")
    await form.get_by_label("Job type").fill("demo.noop")
    await form.get_by_label("Cron expression").fill("*/10 * * * *")
    await form.get_by_role("button", name="Create schedule").click()
    await expect(form).to_have_count(0)
    row = page.locator(f'tr[data-schedule="{name}"]')
    await expect(row).to_contain_text("*/10 * * * *")
    await expect(row.locator("td").nth(3).locator("p, div")).not_to_have_count(0)
    await assert_accessible(page, "schedules")
    data = await stack.gql("{ scheduledJobs { name schedule nextRuns } }")
    mine = [s for s in data["scheduledJobs"] if s["name"] == name]
    assert len(mine) == 1 and mine[0]["schedule"] == "*/10 * * * *" and mine[0]["nextRuns"]


async def test_developer_is_not_offered_admin_actions(page: Page, stack: Stack) -> None:
    q = queue_name("e2e-dev")
    await submit(stack, queue=q, jobType="demo.noop", payload={})
    await sign_in(page, stack.dev_key, "/queues")
    nav = page.get_by_role("navigation", name="Main")
    for name in ("Queues", "Jobs", "Schedules", "Batches"):
        await expect(nav.get_by_role("link", name=name)).to_be_visible()
    for name in ("Dead letters", "Workers", "Timeline", "Charts"):
        await expect(nav.get_by_role("link", name=name)).to_have_count(0)
    await expect(page.locator(f'tr[data-queue="{q}"]')).to_be_visible()
    await expect(page.get_by_role("button", name=re.compile("^(Pause|Resume) "))).to_have_count(0)
    await expect(page.get_by_role("button", name="Limits…")).to_have_count(0)
    await expect(page.get_by_text("developer", exact=True)).to_be_visible()
    await assert_accessible(page, "developer queues")
    # an admin page by URL is not offered either
    await page.goto("/dead-letters")
    await expect(page).to_have_url(re.compile(r"/queues$"))
    await expect(page.get_by_role("button", name="Retry all")).to_have_count(0)


async def test_admin_navigation_and_dark_mode(page: Page, stack: Stack) -> None:
    await sign_in(page, stack.admin_key, "/queues")
    nav = page.get_by_role("navigation", name="Main")
    for name in ("Queues", "Jobs", "Timeline", "Workers", "Dead letters", "Schedules",
                 "Batches", "Charts"):
        await expect(nav.get_by_role("link", name=name)).to_be_visible()
    await page.get_by_role("button", name="Switch to dark mode").click()
    await expect(page.locator("html")).to_have_attribute("data-mantine-color-scheme", "dark")
    for name, heading in (("Jobs", "Jobs"), ("Workers", "Workers"), ("Batches", "Batches"),
                          ("Timeline", "Timeline"), ("Charts", "Charts")):
        await nav.get_by_role("link", name=name).click()
        await expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        await assert_accessible(page, f"{name} (dark)")
    # the key lives in sessionStorage: a reload keeps the session
    await page.reload()
    await expect(page.get_by_role("heading", name="Charts", level=1)).to_be_visible()


async def _view_span_below(canvas: Locator, most: float) -> bool:
    return bool(await canvas.evaluate(
        "el => Number(el.dataset.viewTo) - Number(el.dataset.viewFrom)") < most)


async def _view_span_at_least(canvas: Locator, least: float) -> bool:
    return bool(await canvas.evaluate(
        "el => Number(el.dataset.viewTo) - Number(el.dataset.viewFrom)") >= least - 1)


async def test_timeline_bar_opens_the_job_drawer(page: Page, stack: Stack) -> None:
    q = queue_name("e2e-gantt")
    job_id = await submit(stack, queue=q, jobType="demo.sleep", payload={"ms": 3000})
    await wait_until(lambda: _status_is(stack, job_id, "COMPLETED"), timeout=60,
                     message="gantt job completed")
    await sign_in(page, stack.admin_key, f"/timeline?lanes=queue&queue={q}")
    await expect(page.get_by_text("1 started jobs in view")).to_be_visible()
    await assert_accessible(page, "timeline")
    chart = page.get_by_role("img", name=re.compile("^Gantt chart"))
    await expect(chart.locator("canvas")).to_have_count(1)
    box = await chart.bounding_box()
    assert box is not None
    # One lane; the view opens on the job's span (1 s margin each side of a 3 s bar), so the
    # middle of the plot area (grid: 140 px left, 24 right, 16 top, 72 bottom) is on the bar.
    x = 140 + (box["width"] - 164) / 2
    y = 16 + (box["height"] - 88) / 2
    await chart.click(position={"x": x, "y": y})
    await expect(page).to_have_url(re.compile(f"/jobs/{job_id}$"))
    await expect(page.get_by_role("dialog", name=re.compile(job_id))).to_be_visible()
    # The same by keyboard: Tab reaches the chart, an arrow key puts the cursor on the bar (read
    # out in the live region), Enter opens the job.
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog")).to_have_count(0)
    await page.goto(f"/timeline?lanes=queue&queue={q}")  # still signed in (sessionStorage)
    bars = page.get_by_role("group", name="Timeline bars")
    await expect(page.get_by_text("1 started jobs in view")).to_be_visible()
    # Tab order: the header (a firing-alerts link when an alert fires, e.g. the built-in
    # dead-letter rule after the DLQ test), the nav, filters, lane and view switches, the chart
    for _ in range(45):
        if await bars.evaluate("el => el === document.activeElement"):
            break
        await page.keyboard.press("Tab")
    await expect(bars).to_be_focused()
    # + zooms in (the canvas keeps its view in data attributes), 0 shows the whole window again
    canvas = bars.locator("canvas")
    span = "el => Number(el.dataset.viewTo) - Number(el.dataset.viewFrom)"
    whole = await canvas.evaluate(span)
    await page.keyboard.press("+")
    await wait_until(lambda: _view_span_below(canvas, whole * 0.6), timeout=10,
                     message="+ zoomed the timeline in")
    await page.keyboard.press("0")
    await wait_until(lambda: _view_span_at_least(canvas, whole), timeout=10,
                     message="0 showed the whole window")
    await page.keyboard.press("ArrowRight")
    cursor = page.locator("#timeline-cursor")
    await expect(cursor).to_have_attribute("data-job-id", job_id)
    await expect(cursor).to_contain_text("bar 1 of 1 in this lane")
    await assert_accessible(page, "timeline, keyboard cursor")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(f"/jobs/{job_id}$"))
    await expect(page.get_by_role("dialog", name=re.compile(job_id))).to_be_visible()


async def test_drawer_shows_progress_and_logs_of_a_job(page: Page, stack: Stack) -> None:
    q = queue_name("e2e-progress")
    job_id = await submit(stack, queue=q, jobType="generate_report",
                          payload={"kind": "sample", "rows": 50, "format": "csv"})
    await wait_until(lambda: _status_is(stack, job_id, "COMPLETED"), timeout=60,
                     message="report job completed")
    await sign_in(page, stack.admin_key, f"/jobs/{job_id}")
    drawer = page.get_by_role("dialog", name=re.compile(job_id))
    # reported by the handler with ctx.progress/ctx.log, stored by the worker, read by GraphQL
    await expect(drawer.get_by_role("progressbar", name="Job progress")).to_have_attribute(
        "aria-valuenow", "100")
    await expect(drawer.get_by_label("Job log")).to_contain_text("50 rows in")
    await expect(drawer.get_by_label("Job log")).to_contain_text("wrote ")
    await assert_accessible(page, "job drawer with progress")


async def test_cancelled_sleeping_job_is_stopped_after_the_grace(page: Page, stack: Stack
                                                                 ) -> None:
    """demo.sleep never looks at ctx.cancelled: before the hard cancel it slept to the end."""
    q = queue_name("e2e-cancel")
    job_id = await submit(stack, queue=q, jobType="demo.sleep", payload={"ms": 600_000})
    await wait_until(lambda: _status_is(stack, job_id, "PROCESSING"), timeout=60,
                     message="sleeper started")
    await sign_in(page, stack.admin_key, f"/jobs/{job_id}")
    drawer = page.get_by_role("dialog", name=re.compile(job_id))
    await drawer.get_by_role("button", name="Cancel").click()
    await expect(drawer.locator("[data-status]").first).to_have_attribute(
        "data-status", "CANCELLED", timeout=60_000)
    await expect(drawer).to_contain_text("stopped by the worker")
