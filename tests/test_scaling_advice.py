"""Scaling advice (issue 17, item 3): Erlang C checked against known values and a simulation of
M/M/c, and the endpoint's measured inputs taken from the rollups and the live state."""

from __future__ import annotations

import heapq
import math
import random

import httpx
import pytest

from jobline.analytics.ai import scaling
from jobline.shared.platform.clock import FakeClock, to_dt
from jobline.shared.platform.connections import Deps


def test_erlang_c_matches_the_closed_form_values() -> None:
    assert scaling.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert scaling.erlang_c(10, 8.0) == pytest.approx(0.4092, abs=5e-4)  # standard table value
    assert scaling.erlang_c(3, 3.0) == 1.0 and scaling.erlang_c(3, 0.0) == 0.0
    # a large system stays finite and sane (the Erlang B recursion does not overflow)
    assert 0 < scaling.erlang_c(2000, 1950.0) < 1


def _simulate(c: int, lam: float, s: float, n: int, seed: int) -> list[float]:
    """Waits of ``n`` jobs in a FIFO M/M/c queue (exponential arrivals and service)."""
    rng = random.Random(seed)
    free = [0.0] * c  # when each server is next free
    heapq.heapify(free)
    t, waits = 0.0, []
    for _ in range(n):
        t += rng.expovariate(lam)
        start = max(t, heapq.heappop(free))
        waits.append(start - t)
        heapq.heappush(free, start + rng.expovariate(1 / s))
    return waits


def test_the_wait_tail_agrees_with_a_simulated_queue() -> None:
    c, lam, s = 8, 6.0, 1.0  # 75% utilisation
    waits = _simulate(c, lam, s, 200_000, seed=1)[20_000:]  # drop the warm-up
    for t in (0.0, 0.2, 0.5):
        sim = sum(w > t for w in waits) / len(waits)
        assert sim == pytest.approx(scaling.wait_tail(c, lam, s, t), abs=0.02), t
    assert sum(waits) / len(waits) == pytest.approx(scaling.mean_wait(c, lam, s), rel=0.1)


def test_the_advice_is_the_fewest_slots_meeting_the_target() -> None:
    lam, s, target = 10.0, 0.5, 0.25
    c = scaling.slots_for(lam, s, target)
    assert scaling.wait_tail(c, lam, s, target) <= 0.05 < scaling.wait_tail(c - 1, lam, s, target)
    assert scaling.slots_for(0.0, s, target) == 0


def test_the_backlog_term_starts_every_queued_job_within_the_target() -> None:
    """FIFO with c busy slots: the backlog's last job starts after ``backlog`` completions,
    ``c / S`` per second, so ``c >= backlog * S / T`` starts it within ``T``; the steady-state
    term keeps ``c`` above the offered load, so later arrivals wait no longer."""
    lam, s, t = 2.0, 3.0, 10.0  # offered load 6
    steady = scaling.slots_for(lam, s, t)
    assert scaling.plan(lam, 0.0, s, t, 0)["suggested"] == steady
    for backlog in (1, 20, 40, 500):
        p = scaling.plan(lam, 0.0, s, t, backlog)
        assert p["clear"] == math.ceil(backlog * s / t)
        assert p["suggested"] == max(steady, p["clear"]) > lam * s
        assert backlog * s / p["suggested"] <= t
    # a small backlog is within what the steady state already starts in time
    assert scaling.plan(lam, 0.0, s, t, 20)["suggested"] == steady


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start_ms=1_800_000_000_000)


async def _history(deps: Deps, now_ms: int, queue: str, per_minute: int, mean_ms: int,
                   minutes: int = 60, offset_ms: int = 0) -> None:
    base = now_ms // 60_000 * 60_000 - offset_ms
    rows = [(to_dt(base - i * 60_000), queue, "t", per_minute, per_minute,
             per_minute * mean_ms) for i in range(minutes)]
    await deps.pool.executemany(
        "INSERT INTO job_rollups (minute, queue_name, job_type, submitted, completed, "
        "duration_sum_ms) VALUES ($1, $2, $3, $4, $5, $6)", rows)


async def test_the_endpoint_measures_missing_inputs_and_rest_equals_graphql(
        deps: Deps, admin: httpx.AsyncClient, clock: FakeClock) -> None:
    now = clock.now_ms()
    await _history(deps, now, "img", per_minute=60, mean_ms=500)  # 1 job/s of 0.5 s
    r = await admin.post("/api/v1/ai/scaling-recommendation",
                         json={"queue": "img", "targetLatencyMs": 1000})
    assert r.status_code == 200, r.text
    a = r.json()
    # 60 minutes of rows, but the window also counts the current minute: 3600 jobs / 3600 s
    assert a["inputs"]["arrivalsPerMinute"] == pytest.approx(60.0)
    assert a["inputs"]["averageJobDurationMs"] == 500.0
    assert a["inputs"]["durationSource"] == "measured" and a["inputs"]["pendingJobs"] == 0
    assert a["suggestedWorkers"] == scaling.slots_for(1.0, 0.5, 1.0)
    assert a["currentWorkers"] == 0 and "add" in a["reasoning"][-1]

    # a given backlog of 600 jobs must all start within 1 s: 600 completions of 0.5 s each
    b = (await admin.post("/api/v1/ai/scaling-recommendation", json={
        "queue": "img", "targetLatencyMs": 1000, "pendingJobs": 600, "currentWorkers": 4})).json()
    assert b["suggestedWorkers"] == math.ceil(600 * 0.5 / 1)
    assert b["inputs"]["pendingSource"] == "given" and b["currentWorkers"] == 4

    q = """{ scalingRecommendation(queue: "img", targetLatencyMs: 1000) {
             suggestedWorkers expectedWaitMs reasoning inputs { arrivalsPerMinute } } }"""
    g = (await admin.post("/graphql", json={"query": q})).json()["data"]["scalingRecommendation"]
    assert g["suggestedWorkers"] == a["suggestedWorkers"]
    assert g["expectedWaitMs"] == a["expectedWaitMs"] and g["reasoning"] == a["reasoning"]


async def test_a_busier_hour_last_week_raises_the_planned_rate(
        deps: Deps, admin: httpx.AsyncClient, clock: FakeClock) -> None:
    now = clock.now_ms()
    await _history(deps, now, "mail", per_minute=60, mean_ms=200)
    # the hour ahead, one week ago, brought 3x the jobs
    await _history(deps, now + 3_600_000, "mail", per_minute=180, mean_ms=200,
                   offset_ms=7 * 86_400_000)
    a = (await admin.post("/api/v1/ai/scaling-recommendation",
                          json={"queue": "mail", "targetLatencyMs": 500})).json()
    assert a["inputs"]["arrivalsSource"] == "forecast"
    assert a["inputs"]["arrivalsPerMinute"] > 150
    assert a["suggestedWorkers"] == scaling.slots_for(a["inputs"]["arrivalsPerMinute"] / 60,
                                                      0.2, 0.5)


async def test_bad_or_missing_inputs_are_refused_naming_the_field(
        deps: Deps, admin: httpx.AsyncClient) -> None:
    r = await admin.post("/api/v1/ai/scaling-recommendation",
                         json={"queue": "img", "targetLatencyMs": 0})
    assert r.status_code in (400, 422) and "targetLatencyMs" in r.text
    r = await admin.post("/api/v1/ai/scaling-recommendation", json={"targetLatencyMs": 10})
    assert r.status_code in (400, 422) and "queue" in r.text
    # no history and no duration given: say which input is missing
    r = await admin.post("/api/v1/ai/scaling-recommendation",
                         json={"queue": "empty", "targetLatencyMs": 1000})
    assert r.status_code in (400, 422) and "averageJobDurationMs" in r.text
