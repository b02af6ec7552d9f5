"""Capacity forecasts (issue 17, item 6): Prophet on hourly rollups, backtested against seasonal
naive by MASE, the better model sizing workers and cost per day."""

from __future__ import annotations

import math
import random

import httpx
import pytest

from jobline.analytics.ai import forecast, scaling
from jobline.shared.platform.clock import FakeClock, to_dt
from jobline.shared.platform.connections import Deps

HOUR, DAY = 3_600_000, 86_400_000
NOW = 1_769_904_000_000  # 2026-02-01T00:00:00Z


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start_ms=NOW)


def test_mase_and_seasonal_naive() -> None:
    hist = [float(i % 24) for i in range(24 * 10)]
    assert forecast.seasonal_naive(hist, 30, 24) == [float(h % 24) for h in range(30)]
    assert forecast.mase([1.0, 2.0], [1.0, 2.0], hist, 24) == 0.0
    train = [0.0, 1.0, 0.0, 1.0]  # in-sample naive (season 1) error is 1
    assert forecast.mase([2.0], [0.0], train, 1) == 2.0


async def _hours(deps: Deps, queue: str, days: int, shape: str, seed: int) -> None:
    rng = random.Random(seed)
    rows = []
    for i in range(days * 24):
        at = NOW - days * DAY + i * HOUR
        hour, weekday = (i % 24), ((at // DAY) + 3) % 7  # 1970-01-01 was a Thursday
        base = 60 + 50 * math.sin(2 * math.pi * (hour - 6) / 24) * (hour >= 6)
        if weekday >= 5:
            base *= 0.5
        n = base if shape == "exact" else max(0.0, base + rng.gauss(0, 12))
        rows.append((to_dt(at), queue, "t", int(n), int(n), int(n) * 400))
    await deps.pool.executemany(
        "INSERT INTO job_rollups_hour (at, queue_name, job_type, submitted, completed, "
        "duration_sum_ms) VALUES ($1, $2, $3, $4, $5, $6)", rows)


async def test_a_forecast_with_intervals_capacity_and_cost(
        deps: Deps, admin: httpx.AsyncClient, clock: FakeClock) -> None:
    await _hours(deps, "reports", 28, "noisy", seed=1)
    await deps.pool.execute("INSERT INTO queue_slas VALUES ('reports', 0.95, 120000, 'wait', "
                            "now())")
    await deps.pool.execute("INSERT INTO queue_costs VALUES ('reports', 0.5, now())")
    r = await admin.get("/api/v1/ai/forecast", params={"queue": "reports", "horizonDays": 7})
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["model"] == "prophet" and len(f["points"]) == 7 * 24 and len(f["days"]) == 7
    assert f["points"][0]["at"].startswith("2026-02-01T00:00")
    assert all(p["lower"] <= p["jobs"] <= p["upper"] for p in f["points"])
    b = f["backtest"]
    assert b["holdoutHours"] == 168 and b["seasonHours"] == 168
    assert f["capacityModel"] == ("prophet" if b["maseProphet"] <= b["maseSeasonalNaive"]
                                  else "seasonalNaive")
    # Prophet learns the daily shape: its backtest beats a naive that repeats noisy weeks
    assert b["maseProphet"] < b["maseSeasonalNaive"]
    a = f["assumptions"]
    assert a["meanDurationMs"] == 400.0 and a["waitTargetMs"] == 120000
    assert a["pricePerWorkerHour"] == 0.5
    d = f["days"][0]
    assert d["workersNeeded"] == scaling.slots_for(d["peakJobsPerHour"] / 3600, 0.4, 120)
    assert d["busyWorkerHours"] == pytest.approx(d["jobs"] * 0.4 / 3600, rel=0.01)
    assert d["cost"] == pytest.approx(d["busyWorkerHours"] * 0.5, rel=0.01)
    # weekends are quieter in the history, and in the forecast (2026-02-07 is a Saturday)
    sat = next(x for x in f["days"] if x["date"] == "2026-02-07")
    wed = next(x for x in f["days"] if x["date"] == "2026-02-04")
    assert sat["jobs"] < 0.7 * wed["jobs"]


async def test_the_better_backtest_sizes_capacity(deps: Deps, admin: httpx.AsyncClient,
                                                  clock: FakeClock) -> None:
    # an exactly repeating week: seasonal naive is perfect (MASE 0) and must size the workers
    await _hours(deps, "mail", 21, "exact", seed=2)
    f = (await admin.get("/api/v1/ai/forecast", params={"queue": "mail"})).json()
    assert f["backtest"]["maseSeasonalNaive"] == 0.0 and f["capacityModel"] == "seasonalNaive"
    week_ago = await deps.pool.fetchval(
        "SELECT sum(submitted) FROM job_rollups_hour WHERE queue_name = 'mail' AND at >= $1 "
        "AND at < $2", to_dt(NOW - 7 * DAY), to_dt(NOW - 6 * DAY))
    assert f["days"][0]["jobs"] == pytest.approx(float(week_ago))


async def test_too_little_history_or_bad_input_is_refused_naming_the_field(
        deps: Deps, admin: httpx.AsyncClient, clock: FakeClock) -> None:
    r = await admin.get("/api/v1/ai/forecast", params={"queue": "none"})
    assert r.status_code in (400, 422) and "queue" in r.text
    await _hours(deps, "tiny", 2, "noisy", seed=3)
    r = await admin.get("/api/v1/ai/forecast", params={"queue": "tiny"})
    assert r.status_code in (400, 422) and "at least 72" in r.text
    r = await admin.get("/api/v1/ai/forecast", params={"queue": "x", "horizonDays": 9})
    assert r.status_code in (400, 422) and "horizonDays" in r.text


async def test_graphql_forecast_equals_rest(deps: Deps, admin: httpx.AsyncClient,
                                            clock: FakeClock) -> None:
    await _hours(deps, "mail", 21, "exact", seed=2)
    rest = (await admin.get("/api/v1/ai/forecast", params={"queue": "mail"})).json()
    q = """{ forecast(queue: "mail", horizonDays: 7) { capacityModel totalCost
             backtest { maseSeasonalNaive } days { date jobs workersNeeded } } }"""
    g = (await admin.post("/graphql", json={"query": q})).json()["data"]["forecast"]
    assert g["capacityModel"] == rest["capacityModel"] and g["totalCost"] == rest["totalCost"]
    assert g["days"] == [{k: d[k] for k in ("date", "jobs", "workersNeeded")}
                         for d in rest["days"]]


async def test_without_the_ai_extra_the_endpoint_says_what_to_install(
        deps: Deps, admin: httpx.AsyncClient, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    await _hours(deps, "slim", 5, "noisy", seed=4)
    forecast._cache.clear()
    monkeypatch.setitem(sys.modules, "prophet", None)  # as in a deployment without [ai]
    r = await admin.get("/api/v1/ai/forecast", params={"queue": "slim"})
    assert r.status_code == 503, r.text
    assert "pip install 'jobline[ai]'" in r.json()["error"]["message"]
