"""Anomaly detection (issue 17, item 4) over rollup rows: a failure spike against a seasonal
baseline is detected within the confirmation delay, with its causes, once; normal noise is not."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

import httpx
import pytest

from jobline.analytics.ai import anomaly
from jobline.shared.platform.clock import FakeClock, to_dt
from jobline.shared.platform.connections import Deps

MIN, HOUR, WEEK = 60_000, 3_600_000, 7 * 24 * 3_600_000
#: 2026-01-07 10:00 UTC (a Wednesday, a business hour)
T0 = 1_767_780_000_000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start_ms=T0 + 40 * MIN)


async def _minutes(deps: Deps, start: int, n: int, queue: str, completed: int,
                   failed: int, rng: random.Random, error: str = "RateLimited") -> None:
    rows, errs = [], []
    for i in range(n):
        c = max(0, completed + rng.randint(-8, 8))
        f = max(0, failed + rng.randint(-2, 2))
        rows.append((to_dt(start + i * MIN), queue, "encode", c, f, c * 200))
        if f:
            errs.append((to_dt(start + i * MIN), queue, "encode", error, f))
    await deps.pool.executemany(
        "INSERT INTO job_rollups (minute, queue_name, job_type, completed, failed, duration_sum_ms)"
        " VALUES ($1, $2, $3, $4, $5, $6)", rows)
    await deps.pool.executemany(
        "INSERT INTO job_rollup_errors (minute, queue_name, job_type, error_type, n) "
        "VALUES ($1, $2, $3, $4, $5)", errs)


async def _weeks(deps: Deps, queue: str, completed_per_min: int, failed_per_min: int,
                 hour: int = T0) -> None:
    """The same hour in the four previous weeks (the seasonal baseline), with week-to-week noise."""
    rows = [(to_dt(hour - k * WEEK), queue, "encode", completed_per_min * 60 + 300 * k,
             failed_per_min * 60 + 20 * k, completed_per_min * 60 * 200) for k in range(1, 5)]
    await deps.pool.executemany(
        "INSERT INTO job_rollups_hour (at, queue_name, job_type, completed, failed, "
        "duration_sum_ms) VALUES ($1, $2, $3, $4, $5, $6)", rows)


async def test_a_failure_spike_is_detected_within_two_minutes_with_its_cause(
        deps: Deps, admin: httpx.AsyncClient, clock: FakeClock) -> None:
    rng = random.Random(4)
    await _weeks(deps, "video", 100, 2)
    await _weeks(deps, "mail", 300, 3)
    await _minutes(deps, T0, 20, "video", 100, 2, rng)
    await _minutes(deps, T0, 40, "mail", 300, 3, rng)  # a calm queue: no alarm
    spike = T0 + 20 * MIN
    await _minutes(deps, spike, 10, "video", 100, 45, rng, error="TimeoutError")
    await _minutes(deps, spike + 10 * MIN, 10, "video", 100, 2, rng)

    found = await anomaly.detect(deps, T0, T0 + 40 * MIN)
    assert [(a["queue"], a["metric"]) for a in found] == [("video", "failure_rate")]
    (a,) = found
    delay = a["detectedAtMs"] - spike
    assert 0 < delay <= 2 * MIN  # the spike's first minute counts; confirmed on the next
    assert a["score"] >= anomaly.THRESHOLD and a["baseline"] == pytest.approx(2 / 102, abs=0.01)
    assert a["baselineSource"] == "same hour, previous weeks"
    assert any(c.startswith("TimeoutError in encode:") for c in a["possibleCauses"])

    # one episode, ended once quiet; an ai.anomaly event in the outbox for alert rules
    row = await deps.pool.fetchrow("SELECT detected_at, ended_at FROM ai_anomalies")
    assert row["ended_at"] is not None and row["ended_at"] > row["detected_at"]
    ev = await deps.pool.fetch("SELECT queue_name, data FROM job_events WHERE type = 'ai.anomaly'")
    assert [e["queue_name"] for e in ev] == ["video"]

    r = await admin.get("/api/v1/ai/anomalies", params={
        "from": datetime.fromtimestamp(T0 / 1000, UTC).isoformat(),
        "to": datetime.fromtimestamp((T0 + HOUR) / 1000, UTC).isoformat()})
    assert r.status_code == 200, r.text
    (api,) = r.json()["anomalies"]
    assert api["metric"] == "failure_rate" and api["queue"] == "video"
    assert api["detectedAt"].startswith("2026-01-07T10:2") and api["endedAt"] is not None
    assert api["possibleCauses"] == a["possibleCauses"]
    only_mail = (await admin.get("/api/v1/ai/anomalies", params={
        "queue": "mail", "from": "2026-01-07T00:00:00Z"})).json()
    assert only_mail["anomalies"] == []


async def test_the_scheduler_tick_neither_skips_nor_repeats_minutes(
        deps: Deps, clock: FakeClock) -> None:
    rng = random.Random(5)
    await _weeks(deps, "video", 100, 2)
    await _weeks(deps, "video", 100, 2, hour=T0 + HOUR)
    await _minutes(deps, T0, 60, "video", 100, 2, rng)
    # 15% failures against 2%: past the threshold, short of STRONG, so it needs confirming
    await _minutes(deps, T0 + 60 * MIN, 10, "video", 100, 18, rng, error="Boom")
    clock.advance(20 * MIN)  # 11:00: the spike's first minute is not complete yet
    assert await anomaly.tick(deps) == 0
    clock.advance(MIN)
    assert await anomaly.tick(deps) == 0  # 11:00 scored high once: not confirmed yet
    clock.advance(MIN)
    assert await anomaly.tick(deps) == 1  # 11:01 confirms it, one minute per tick
    clock.advance(MIN)
    assert await anomaly.tick(deps) == 0  # the open episode is not detected again
    assert await deps.pool.fetchval("SELECT count(*) FROM ai_anomalies") == 1
    a = await deps.pool.fetchrow("SELECT score FROM ai_anomalies")
    assert anomaly.THRESHOLD <= a["score"] < anomaly.STRONG


async def test_a_strong_spike_is_detected_on_its_first_minute(
        deps: Deps, clock: FakeClock) -> None:
    rng = random.Random(5)
    await _weeks(deps, "video", 100, 2)
    await _weeks(deps, "video", 100, 2, hour=T0 + HOUR)
    await _minutes(deps, T0, 60, "video", 100, 2, rng)
    await _minutes(deps, T0 + 60 * MIN, 10, "video", 100, 50, rng, error="Boom")
    clock.advance(20 * MIN)
    assert await anomaly.tick(deps) == 0
    clock.advance(MIN)
    # 33% failures in one minute of ~150 attempts: no confirmation needed
    assert await anomaly.tick(deps) == 1
    a = await deps.pool.fetchrow("SELECT detected_at, score FROM ai_anomalies")
    assert a["score"] >= anomaly.STRONG
    assert a["detected_at"] == to_dt(T0 + 61 * MIN)


async def test_bad_range_is_refused_naming_the_field(admin: httpx.AsyncClient) -> None:
    r = await admin.get("/api/v1/ai/anomalies", params={"from": "2026-01-02T00:00:00Z",
                                                        "to": "2026-01-01T00:00:00Z"})
    assert r.status_code in (400, 422) and "from" in r.text
    r = await admin.get("/api/v1/ai/anomalies", params={"from": "yesterday"})
    assert r.status_code in (400, 422) and "from" in r.text


async def test_graphql_lists_the_same_episodes(deps: Deps, admin: httpx.AsyncClient,
                                               clock: FakeClock) -> None:
    rng = random.Random(6)
    await _weeks(deps, "video", 100, 2)
    await _minutes(deps, T0, 20, "video", 100, 2, rng)
    await _minutes(deps, T0 + 20 * MIN, 10, "video", 100, 60, rng, error="Boom")
    (a,) = await anomaly.detect(deps, T0, T0 + 30 * MIN)
    q = """{ anomalies(from: "2026-01-07T00:00:00Z", queue: "video") {
             metric queue detectedAt score possibleCauses baselineSource } }"""
    (g,) = (await admin.post("/graphql", json={"query": q})).json()["data"]["anomalies"]
    assert g["metric"] == "failure_rate" and g["score"] == a["score"]
    assert g["possibleCauses"] == a["possibleCauses"]


async def test_a_slowdown_is_a_duration_anomaly_naming_the_slower_type(
        deps: Deps, clock: FakeClock) -> None:
    from jobline.shared.observe import sketch

    rng = random.Random(8)
    await _weeks(deps, "video", 100, 2)
    await _minutes(deps, T0, 30, "video", 100, 2, rng)
    hist = []
    for i in range(30):
        ms = 200 if i < 20 else 2_000  # ten times slower from minute 20
        hist.append((to_dt(T0 + i * MIN), "video", "encode", "duration", sketch.bucket(ms), 100))
    await deps.pool.executemany(
        "INSERT INTO job_rollup_histograms (minute, queue_name, job_type, metric, bucket, n) "
        "VALUES ($1, $2, $3, $4, $5, $6)", hist)
    await deps.pool.execute(
        "UPDATE job_rollups SET duration_sum_ms = completed * 2000 WHERE minute >= $1",
        to_dt(T0 + 20 * MIN))
    hour = [(to_dt(T0 - k * WEEK), "video", "encode", "duration", sketch.bucket(200), 6000)
            for k in range(1, 5)]
    await deps.pool.executemany(
        "INSERT INTO job_rollup_histograms_hour (at, queue_name, job_type, metric, bucket, n) "
        "VALUES ($1, $2, $3, $4, $5, $6)", hour)
    found = await anomaly.detect(deps, T0, T0 + 30 * MIN)
    slow = [a for a in found if a["metric"] == "duration_p95"]
    assert len(slow) == 1 and slow[0]["detectedAtMs"] - (T0 + 20 * MIN) <= 2 * MIN
    # causes are read over the window that scored: a strong score starts the episode on the
    # first slow minute, so the 3-minute window still holds two minutes of the old speed
    # (~845 ms against 200)
    (cause,) = slow[0]["possibleCauses"]
    m = re.match(r"encode runs ([\d.]+)x slower: mean ([\d,]+) ms \(was 200 ms\)", cause)
    assert m is not None and float(m[1]) >= 4, cause


async def test_a_stalled_queue_is_detected_on_its_second_minute(
        deps: Deps, clock: FakeClock) -> None:
    """The oldest pending job of a queue that stops being served ages a minute per minute;
    against a few seconds normally, two minutes of it are an anomaly (with the old 30 s floor
    of the score's scale it took five)."""
    rng = random.Random(9)
    hours = [(metric, "video", to_dt(T0 - k * WEEK), avg, mx)
             for k in range(1, 5)
             for metric, avg, mx in (("queue.oldest_pending_ms", 4_000.0, 8_000.0 + 100 * k),
                                     ("queue.depth", 3.0, 6.0))]
    await deps.pool.executemany(
        "INSERT INTO analytics_samples_hour (metric, subject, at, avg, min, max, last, n) "
        "VALUES ($1, $2, $3, $4, 0, $5, $4, 60)", hours)
    stall = T0 + 20 * MIN
    samples = []
    for i in range(30):
        m = T0 + i * MIN
        age = (m - stall + MIN) if m >= stall else rng.uniform(500, 8_000)
        samples.append(("queue.oldest_pending_ms", "video", to_dt(m), float(age)))
        samples.append(("queue.depth", "video", to_dt(m), float(rng.randint(0, 6))))
    await deps.pool.executemany(
        "INSERT INTO analytics_samples (metric, subject, minute, value) "
        "VALUES ($1, $2, $3, $4)", samples)
    found = await anomaly.detect(deps, T0, T0 + 30 * MIN)
    assert [(a["queue"], a["metric"]) for a in found] == [("video", "oldest_pending_age")]
    (a,) = found
    # its second minute is scored once complete, at 2 minutes past the stall's start
    assert a["detectedAtMs"] - stall == 2 * MIN
    assert a["currentValue"] == 2 * MIN and a["baseline"] == pytest.approx(8_250, abs=100)
