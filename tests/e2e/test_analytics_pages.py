"""The eight admin analytics pages (issue 16) in Chromium against a real ``jobline run`` stack.

The history is small and written straight into migration 0022's tables (minute rollups with their
histograms, error and attempt rows; the hour and day grains summed from them; minute samples and
their hour aggregates; a queue's SLA and price), 48 hours of it for queues named ``an-*`` that no
other test uses, so the pages read months-of-history shapes without a seed run. The Dependencies
page reads a real DAG: three jobs with ``dependsOn`` that the stack's worker runs.

Each page must show real figures (the seeded queues and numbers) after a client-side navigation;
the time from the click to the page's data (its ``analytics:<page>:data`` performance mark) is
logged and held to a generous bound (the issue asks for 1 s on the 100M seed; this is a loaded
2-core machine, so the bound only catches something badly wrong). axe finds no serious or critical
violation on any of them.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Locator, Page, expect

from jobline.shared.observe.sketch import bucket
from jobline.testing import wait_until

from .conftest import Stack, axe_violations, fmt, sign_in

HOURS = 48
STEP_MIN = 5  # a rollup row every 5 minutes is enough history for every chart
#: (queue, job type, jobs per row, run time ms, failure share, error type)
TYPES = [
    ("an-email", "an.send_welcome", 40, 180, 0.12, "SmtpTimeout"),
    ("an-email", "an.send_digest", 10, 900, 0.02, "ConnectionRefused"),
    ("an-video", "an.transcode", 3, 45_000, 0.05, "OutOfMemory"),
    ("an-billing", "an.charge", 6, 1_200, 0.20, "CardDeclined"),
]
QUEUES = sorted({t[0] for t in TYPES})
WORKER = "an-host:default:1"
#: How long a page may take from the click to its data before the test fails (the issue's goal is
#: 1 s; the measured times are printed).
BOUND_MS = 5_000


async def _write_history(conn: asyncpg.Connection, now: datetime) -> None:
    """Minute rows for the last ``HOURS`` hours, then the coarser grains summed from them."""
    rnd = random.Random(16)
    start = (now - timedelta(hours=HOURS)).replace(second=0, microsecond=0)
    rollups, hists, errors, attempts, samples = [], [], [], [], []
    minute = start
    i = 0
    while minute < now - timedelta(minutes=5):
        # busier in the last 24 hours than in the 24 before: the summary's trend goes up
        recent = minute >= now - timedelta(hours=24)
        for queue, jt, per, run_ms, fail, err in TYPES:
            n = max(1, int(per * (1.5 if recent else 1.0) * rnd.uniform(0.7, 1.3)))
            retries = round(n * fail)
            dead = 1 if fail >= 0.1 and i % 12 == 0 else 0
            failed = retries + dead
            completed = n - dead
            dur = [max(1, int(rnd.lognormvariate(0, 0.4) * run_ms)) for _ in range(completed)]
            wait = [rnd.randint(5, 2_000) for _ in range(n)]
            failed_run = [max(1, int(run_ms * rnd.uniform(0.2, 1.5))) for _ in range(failed)]
            e2e = [d + w for d, w in zip(dur, wait, strict=False)]
            rollups.append(
                (
                    minute,
                    queue,
                    jt,
                    n,
                    n + retries,
                    completed,
                    failed,
                    retries,
                    dead,
                    0,
                    sum(dur),
                    sum(wait),
                    sum(e2e),
                    sum(failed_run),
                )
            )
            for metric, values in (
                ("duration", dur),
                ("wait", wait),
                ("e2e", e2e),
                ("failed", failed_run),
            ):
                counts: dict[int, int] = {}
                for v in values:
                    counts[bucket(v)] = counts.get(bucket(v), 0) + 1
                hists += [(minute, queue, jt, metric, b, c) for b, c in counts.items()]
            if failed:
                errors.append((minute, queue, jt, err, failed))
            second = min(retries, completed)
            attempts.append((minute, queue, jt, 1, completed - second, retries))
            if retries:
                attempts.append((minute, queue, jt, 2, second, dead))
        i += 1
        minute += timedelta(minutes=STEP_MIN)

    minute = start
    k = 0
    while minute < now - timedelta(minutes=5):
        wave = 1 + 0.5 * math.sin(k / 20)
        for j, q in enumerate(QUEUES):
            samples.append(("queue.depth", q, minute, float(int(40 * (j + 1) * wave))))
            samples.append(
                ("queue.oldest_pending_ms", q, minute, float(int(30_000 * (j + 1) * wave)))
            )
        samples += [
            ("workers.count", "*", minute, 3.0 + k % 2),
            ("workers.slots", "*", minute, 12.0),
            ("workers.busy", "*", minute, float(int(6 * wave))),
            ("workers.crashes", "*", minute, 1.0 if k % 100 == 7 else 0.0),
            ("worker.cpu_pct", WORKER, minute, 35.0 * wave),
            ("worker.rss_bytes", WORKER, minute, 90e6),
            ("redis.memory_bytes", "*", minute, 40e6 + k * 1e4),
            ("pg.database_bytes", "*", minute, 2e9 + k * 1e6),
            ("pg.table_bytes", "an_history_demo", minute, 1.5e9 + k * 1e6),
            ("events.lag", "an-relay", minute, float(k % 9)),
            ("health.up", "api", minute, 1.0),
        ]
        k += 1
        minute += timedelta(minutes=STEP_MIN)

    await conn.execute("SET TIME ZONE 'UTC'")
    roll_cols = [
        "minute",
        "queue_name",
        "job_type",
        "submitted",
        "started",
        "completed",
        "failed",
        "retries",
        "dead_letter",
        "cancelled",
        "duration_sum_ms",
        "wait_sum_ms",
        "e2e_sum_ms",
        "failed_ms",
    ]
    await conn.copy_records_to_table("job_rollups", records=rollups, columns=roll_cols)
    await conn.copy_records_to_table(
        "job_rollup_histograms",
        records=hists,
        columns=["minute", "queue_name", "job_type", "metric", "bucket", "n"],
    )
    await conn.copy_records_to_table(
        "job_rollup_errors",
        records=errors,
        columns=["minute", "queue_name", "job_type", "error_type", "n"],
    )
    await conn.copy_records_to_table(
        "job_rollup_attempts",
        records=attempts,
        columns=["minute", "queue_name", "job_type", "attempt", "completed", "failed"],
    )
    # the hour and day grains hold the sums of the minute rows they cover (what the fold keeps)
    sums = ", ".join(f"sum({c})" for c in roll_cols[3:])
    for grain in ("hour", "day"):
        await conn.execute(
            f"INSERT INTO job_rollups_{grain} (at, {', '.join(roll_cols[1:])}) "
            f"SELECT date_trunc('{grain}', minute), queue_name, job_type, {sums} FROM job_rollups "
            "WHERE queue_name = ANY($1) GROUP BY 1, 2, 3",
            QUEUES,
        )
        await conn.execute(
            f"INSERT INTO job_rollup_histograms_{grain} (at, queue_name, job_type, metric, bucket, n) "
            f"SELECT date_trunc('{grain}', minute), queue_name, job_type, metric, bucket, sum(n) "
            "FROM job_rollup_histograms WHERE queue_name = ANY($1) GROUP BY 1, 2, 3, 4, 5",
            QUEUES,
        )
        await conn.execute(
            f"INSERT INTO job_rollup_errors_{grain} (at, queue_name, job_type, error_type, n) "
            f"SELECT date_trunc('{grain}', minute), queue_name, job_type, error_type, sum(n) "
            "FROM job_rollup_errors WHERE queue_name = ANY($1) GROUP BY 1, 2, 3, 4",
            QUEUES,
        )
        await conn.execute(
            f"INSERT INTO job_rollup_attempts_{grain} (at, queue_name, job_type, attempt, completed, failed) "
            f"SELECT date_trunc('{grain}', minute), queue_name, job_type, attempt, sum(completed), "
            "sum(failed) FROM job_rollup_attempts WHERE queue_name = ANY($1) GROUP BY 1, 2, 3, 4",
            QUEUES,
        )
    # samples: the stack's own sampler may own some (metric, subject, minute) already
    await conn.executemany(
        "INSERT INTO analytics_samples (metric, subject, minute, value) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING",
        samples,
    )
    await conn.execute(
        "INSERT INTO analytics_samples_hour (metric, subject, at, avg, min, max, last, n) "
        "SELECT metric, subject, date_trunc('hour', minute), avg(value), min(value), max(value), "
        "(array_agg(value ORDER BY minute DESC))[1], count(*) FROM analytics_samples "
        "WHERE minute < date_trunc('hour', now()) AND minute >= $1 "
        "GROUP BY 1, 2, 3 ON CONFLICT DO NOTHING",
        start,
    )
    # the queues themselves, as the first submission to each registers it
    await conn.execute(
        "INSERT INTO queues (name, created_at) SELECT unnest($1::text[]), now() "
        "ON CONFLICT DO NOTHING", QUEUES)
    await conn.execute(
        "INSERT INTO queue_slas (queue_name, objective, target_ms, metric, updated_at) "
        "VALUES ('an-email', 0.95, 300000, 'e2e', now()) ON CONFLICT DO NOTHING"
    )
    await conn.execute(
        "INSERT INTO queue_costs (queue_name, price_per_worker_hour, updated_at) "
        "VALUES ('an-video', 0.25, now()) ON CONFLICT DO NOTHING"
    )


@pytest.fixture(scope="session")
async def history(stack: Stack) -> AsyncIterator[dict[str, Any]]:
    dsn = json.loads((stack.home / "services.json").read_text())["database_url"]
    conn = await asyncpg.connect(dsn)
    try:
        await _write_history(conn, datetime.now(UTC))
    finally:
        await conn.close()
    # a small DAG the worker runs for real: extract -> (transform, lookup) -> load
    chain = await stack.gql(
        "mutation($in: [SubmitJobInput!]!) { submitMany(inputs: $in) { id } }",
        {
            "in": [
                {"queue": "an-etl", "jobType": "demo.sleep", "payload": {"ms": 400}},
                {
                    "queue": "an-etl",
                    "jobType": "demo.sleep",
                    "payload": {"ms": 200},
                    "dependsOn": ["0"],
                },
                {"queue": "an-etl", "jobType": "demo.noop", "payload": {}, "dependsOn": ["0"]},
                {
                    "queue": "an-etl",
                    "jobType": "demo.noop",
                    "payload": {"step": "load"},
                    "dependsOn": ["1", "2"],
                },
            ]
        },
    )
    ids = [j["id"] for j in chain["submitMany"]]

    async def done() -> bool:
        for i in ids:
            st = await stack.gql("query($id: ID!) { job(id: $id) { status } }", {"id": i})
            if st["job"]["status"] != "COMPLETED":
                return False
        return True

    await wait_until(done, timeout=120, message="the DAG's jobs completed")
    yield {"dag": ids}


async def _visit(page: Page, link: str, mark: str, ready: Locator) -> float:
    """Click a navigation link and wait for real figures; returns click -> data in ms."""
    await page.evaluate("performance.clearMarks(); performance.mark('nav')")
    nav = page.get_by_role("navigation", name="Main")
    group = nav.get_by_role("group", name="Analytics pages")
    target = (
        nav.get_by_role("link", name="Analytics", exact=True)
        if link == "Analytics"
        else group.get_by_role("link", name=link, exact=True)
    )
    await target.click()
    await expect(ready).to_be_visible()
    await page.wait_for_function(
        f"performance.getEntriesByName('analytics:{mark}:data').length > 0"
    )
    ms = await page.evaluate(
        f"performance.measure('{mark}', 'nav', 'analytics:{mark}:data').duration"
    )
    print(f"analytics page {mark}: data {ms:.0f} ms after the click")
    assert ms < BOUND_MS, f"{mark}: {ms:.0f} ms from the click to data"
    bad = await axe_violations(page)
    assert not bad, f"axe on analytics {mark}:\n{fmt(bad)}"
    return float(ms)


NUMBER = re.compile(r"[1-9][\d,]*")


async def test_every_analytics_page_shows_real_figures(
    page: Page, stack: Stack, history: dict[str, Any]
) -> None:
    await sign_in(page, stack.admin_key, "/queues")
    times: dict[str, float] = {}

    processed = page.get_by_role("region", name="Jobs processed")
    times["summary"] = await _visit(page, "Analytics", "summary", processed)
    await expect(processed.locator("[data-figure]")).to_have_text(NUMBER)
    # the last 24 hours carry 1.5x the jobs of the 24 before
    await expect(processed.locator("[data-trend]")).to_have_attribute("data-trend", "up")
    await expect(page.get_by_role("figure", name="Throughput")).to_be_visible()
    # the AI top issues: an.send_welcome's SmtpTimeout attempts (thousands in the range) make
    # it a slow job type with the most jobs at stake
    top = page.get_by_role("region", name="Top issues")
    slow = top.get_by_role("listitem", name="Top issue 1: an.send_welcome is slow")
    await expect(slow).to_contain_text(re.compile(r"Impact: [1-9][\d,]* jobs at stake"))
    await expect(slow).to_contain_text("attempts timed out")
    await expect(slow.get_by_role("link", name="Investigate: an.send_welcome is slow")
                 ).to_have_attribute("href", "/analytics/queues?queue=an-email&jobType=an.send_welcome")
    assert await top.get_by_role("listitem").count() <= 3
    await expect(page.get_by_role("region", name="Recent anomalies")).to_be_visible()

    side = page.get_by_role("table", name="Queues side by side")
    times["queues"] = await _visit(
        page, "Queue deep dive", "queues", side.get_by_role("link", name="an-video")
    )
    await side.get_by_role("link", name="an-email").click()
    await expect(page).to_have_url(re.compile(r"/analytics/queues\?queue=an-email"))
    picked = page.get_by_role("region", name="Queue an-email")
    # throughput comes from the seeded rollups (the depth now may be the live, empty queue's)
    await expect(
        picked.get_by_role("region", name="Throughput").locator("[data-figure]")
    ).to_have_text(NUMBER)
    types = page.get_by_role("table", name="Durations by job type")
    await expect(types.get_by_role("row", name=re.compile("an.send_welcome"))).to_be_visible()
    # the queue filter travels with the navigation
    await expect(
        page.get_by_role("group", name="Analytics pages").get_by_role("link", name="Failures")
    ).to_have_attribute("href", "/analytics/failures?queue=an-email")

    worst = page.get_by_role("table", name="Job types with the highest failure rate")
    times["failures"] = await _visit(
        page, "Failures", "failures", worst.get_by_role("row", name=re.compile("an.send_welcome"))
    )
    await expect(worst.get_by_role("row", name=re.compile("an.send_welcome"))).to_contain_text("%")
    await expect(page.get_by_role("figure", name="Error types")).to_contain_text("Error types")
    await (
        page.get_by_role("figure", name="Error types")
        .get_by_text("Data table: Error types")
        .click()
    )
    await expect(page.get_by_role("table", name="Error types")).to_contain_text("SmtpTimeout")

    # clear the queue filter for the rest
    await (
        page.get_by_role("textbox", name="Queue")
        .or_(page.get_by_role("combobox", name="Queue"))
        .fill("")
    )
    await page.keyboard.press("Enter")
    await expect(page).not_to_have_url(re.compile("queue=an-email"))

    retries = page.get_by_role("table", name="Retries by job type")
    times["retries"] = await _visit(
        page, "Retries", "retries", retries.get_by_role("row", name=re.compile("an.charge"))
    )
    await expect(
        page.get_by_role("region", name="Wasted compute").locator("[data-figure]")
    ).not_to_have_text("—")

    per_worker = page.get_by_role("table", name="CPU and memory per worker")
    times["resources"] = await _visit(
        page, "Resources", "resources", per_worker.get_by_role("row", name=re.compile(WORKER))
    )
    await expect(page.get_by_role("figure", name="Worker count")).to_be_visible()

    cost = page.get_by_role("table", name="Cost by queue")
    times["cost"] = await _visit(
        page, "Cost", "cost", cost.get_by_role("row", name=re.compile("an-video"))
    )
    await expect(cost.get_by_role("row", name=re.compile("an-video"))).to_contain_text("$")
    form = page.get_by_role("form", name="Set a queue's price")
    await form.get_by_role("combobox", name="Queue").fill("an-email")
    await form.get_by_role("textbox", name="Price per worker-hour (USD)").fill("0.5")
    await form.get_by_role("button", name="Save price").click()
    await expect(page.get_by_text("an-email now costs $0.50 per worker-hour.")).to_be_visible()

    sla = page.get_by_role("table", name="SLA compliance by queue")
    times["sla"] = await _visit(
        page, "SLA", "sla", sla.get_by_role("row", name=re.compile("an-email"))
    )
    await expect(sla.get_by_role("row", name=re.compile("an-email"))).to_contain_text(
        "95% within 5.0 min"
    )
    form = page.get_by_role("form", name="Set a queue's SLA")
    await form.get_by_role("combobox", name="Queue").fill("an-billing")
    await form.get_by_role("textbox", name="Objective (%)").fill("99")
    await form.get_by_role("textbox", name="Within").fill("30")  # the unit is minutes by default
    await form.get_by_role("button", name="Save SLA").click()
    await expect(
        page.get_by_text("Saved — an-billing: 99% within 30.0 min (end to end).")
    ).to_be_visible()
    await expect(sla.get_by_role("row", name=re.compile("an-billing"))).to_be_visible()

    dag = history["dag"]
    await page.evaluate("performance.clearMarks(); performance.mark('nav')")
    await page.goto(f"/analytics/dependencies?job={dag[-1]}")
    path = page.get_by_role("list", name="Critical path, first job first")
    await expect(path.get_by_role("listitem").first).to_be_visible()
    # the path runs from the DAG's root to the job asked about
    assert await path.get_by_role("listitem").count() >= 2
    await expect(
        page.get_by_role("figure", name=f"Dependency graph of job {dag[-1]}")
    ).to_be_visible()
    # the graph itself (its own lazily loaded chunk) draws every job of the DAG
    await expect(page.locator(".react-flow__node")).to_have_count(len(dag))
    ms = await page.evaluate(
        "performance.getEntriesByName('analytics:dependencies:data')[0].startTime"
    )
    print(f"analytics page dependencies: data {ms:.0f} ms after navigation start (full load)")
    assert ms < BOUND_MS
    bad = await axe_violations(page)
    assert not bad, f"axe on analytics dependencies:\n{fmt(bad)}"
    print("analytics pages, click -> data (ms):", {k: round(v) for k, v in times.items()})

    # the dark scheme: same checks for contrast
    await page.get_by_role("button", name="Switch to dark mode").click()
    await (
        page.get_by_role("navigation", name="Main")
        .get_by_role("link", name="Analytics", exact=True)
        .click()
    )
    await expect(
        page.get_by_role("region", name="Jobs processed").locator("[data-figure]")
    ).to_have_text(NUMBER)
    bad = await axe_violations(page)
    assert not bad, f"axe on the executive summary, dark:\n{fmt(bad)}"
