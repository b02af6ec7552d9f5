"""Capacity forecasts (issue 17, item 6): Prophet on each queue's hourly submissions.

The history is the queue's hourly ``submitted`` counts from ``job_rollups_hour`` over the last
``HISTORY_DAYS`` days (missing hours are zero). Two models forecast the next 7 or 30 days:

* **Prophet** (daily and weekly seasonality), the model the design card names, and
* **seasonal naive**: each hour repeats the same hour one week earlier (one day earlier with
  less than two weeks of history).

Both are backtested on the newest week (or quarter of the history, if shorter) after fitting on
the rest, scored by MASE: mean absolute error divided by the in-sample error of the seasonal
naive step. The points reported are Prophet's; the capacity figures use the model with the lower
backtest MASE (``capacityModel``) so a poor fit never sizes the workers.

Capacity per day: the busiest forecast hour's arrival rate goes through the M/M/c advice
(:mod:`jobline.analytics.ai.scaling`) with the queue's mean run time and its SLA target (the
``queue_slas`` row; 60 s without one); cost is busy worker-hours (jobs x mean run time) at the
queue's price per worker-hour (``queue_costs``, else ``JOBLINE_PRICE_PER_WORKER_HOUR``).

Fitting takes about a second per model on this machine, so it runs in a thread and answers are
cached per (queue, horizon) for ``CACHE_S``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
import warnings
from typing import Any

from jobline.analytics.ai import needs_ai_extra, scaling
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import ValidationFailed

HOUR = 3_600_000
DAY = 24 * HOUR
HISTORY_DAYS = 56
MIN_HISTORY_HOURS = 72
HORIZONS = (7, 30)
DEFAULT_TARGET_MS = 60_000
DEFAULT_PRICE = 0.10
CACHE_S = 600.0

HISTORY = """
SELECT at, sum(submitted) AS submitted FROM job_rollups_hour
 WHERE queue_name = $1 AND at >= $2 AND at < $3 GROUP BY at ORDER BY at
"""
DURATION = """
SELECT sum(duration_sum_ms) AS dur, sum(completed) AS completed FROM job_rollups_hour
 WHERE queue_name = $1 AND at >= $2 AND at < $3
"""
SLA = "SELECT objective, target_ms, metric FROM queue_slas WHERE queue_name = $1"
PRICE = "SELECT price_per_worker_hour FROM queue_costs WHERE queue_name = $1"

_cache: dict[tuple[str, int, int], tuple[float, dict[str, Any]]] = {}


def seasonal_naive(history: list[float], horizon: int, season: int) -> list[float]:
    """Each future hour repeats the same hour ``season`` hours (or a multiple) earlier."""
    n = len(history)
    return [history[n - season + (h % season)] for h in range(horizon)]


def mase(actual: list[float], forecast: list[float], train: list[float], season: int) -> float:
    """MAE of ``forecast`` over the in-sample MAE of the seasonal naive step on ``train``."""
    scale = sum(abs(train[i] - train[i - season]) for i in range(season, len(train)))
    scale /= max(1, len(train) - season)
    mae = sum(abs(a - f) for a, f in zip(actual, forecast, strict=True)) / len(actual)
    return mae / scale if scale > 0 else (0.0 if mae == 0 else math.inf)


def _prophet(start_ms: int, history: list[float], horizon: int) -> list[tuple[float, float,
                                                                                float]]:
    """(yhat, lower, upper) for the ``horizon`` hours after the history (non-negative)."""
    # prophet logs an ERROR on import when plotly (only for its plots) is missing
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)
    import pandas as pd
    from prophet import Prophet

    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
    logging.getLogger("prophet").setLevel(logging.WARNING)
    # prophet 1.5 calls pandas APIs that pandas 3 deprecates (DataFrame.drop(inplace=...)):
    # the warning is theirs to fix, not an error of ours
    warnings.filterwarnings("ignore", module=r"prophet(\.|$)")
    ds = pd.to_datetime([start_ms + i * HOUR for i in range(len(history))], unit="ms")
    # Queues follow working hours: a sharp daily shape (a 9-17 plateau) that Prophet's default
    # daily Fourier order (4) smooths away, scaled down on weekends (multiplicative).
    m = Prophet(daily_seasonality=False, weekly_seasonality=False, yearly_seasonality=False,
                seasonality_mode="multiplicative", interval_width=0.8, uncertainty_samples=200)
    m.add_seasonality(name="daily", period=1, fourier_order=12)
    if len(history) >= 14 * 24:
        m.add_seasonality(name="weekly", period=7, fourier_order=6)
    m.fit(pd.DataFrame({"ds": ds, "y": history}))
    future = pd.DataFrame({"ds": pd.to_datetime(
        [start_ms + (len(history) + h) * HOUR for h in range(horizon)], unit="ms")})
    f = m.predict(future)
    return [(max(0.0, float(a)), max(0.0, float(b)), max(0.0, float(c)))
            for a, b, c in zip(f["yhat"], f["yhat_lower"], f["yhat_upper"], strict=True)]


def _fit(start_ms: int, history: list[float], horizon_h: int) -> dict[str, Any]:
    """Backtest both models, then forecast with both (runs in a thread)."""
    season = 168 if len(history) >= 2 * 168 + 24 else 24
    hold = min(168, len(history) // 4)
    train, actual = history[:-hold], history[-hold:]
    p_back = [y for y, _, _ in _prophet(start_ms, train, hold)]
    n_back = seasonal_naive(train, hold, season)
    scores = {"prophet": mase(actual, p_back, train, season),
              "seasonalNaive": mase(actual, n_back, train, season)}
    return {"season": season, "holdoutHours": hold, "mase": scores,
            "prophet": _prophet(start_ms, history, horizon_h),
            "naive": seasonal_naive(history, horizon_h, season)}


@needs_ai_extra
async def forecast(deps: Deps, queue: str, horizon_days: int) -> dict[str, Any]:
    """Hourly points with 80% intervals, and per day the jobs, the worker slots the SLA needs
    and the cost (see the module docstring)."""
    if horizon_days not in HORIZONS:
        raise ValidationFailed("horizonDays", "must be 7 or 30")
    now = deps.clock.now_ms() // HOUR * HOUR
    key = (queue, horizon_days, now)
    hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < CACHE_S:
        return hit[1]
    rows = await deps.pool.fetch(HISTORY, queue, to_dt(now - HISTORY_DAYS * DAY), to_dt(now))
    if not rows:
        raise ValidationFailed("queue", f"no submissions of queue {queue!r} in the last "
                                        f"{HISTORY_DAYS} days")
    first = from_dt(rows[0]["at"])
    by_hour = {from_dt(r["at"]): float(r["submitted"]) for r in rows}
    history = [by_hour.get(t, 0.0) for t in range(first, now, HOUR)]
    if len(history) < MIN_HISTORY_HOURS:
        raise ValidationFailed("queue", f"{len(history)} hours of history for {queue!r}; at "
                                        f"least {MIN_HISTORY_HOURS} are needed")
    fit = await asyncio.to_thread(_fit, first, history, horizon_days * 24)
    d = await deps.pool.fetchrow(DURATION, queue, to_dt(now - 7 * DAY), to_dt(now))
    mean_ms = float(d["dur"]) / int(d["completed"]) if d and d["completed"] else None
    sla = await deps.pool.fetchrow(SLA, queue)
    target_ms, target_source = DEFAULT_TARGET_MS, "default (no SLA set)"
    if sla is not None:
        target_ms = int(sla["target_ms"])
        if sla["metric"] == "e2e" and mean_ms is not None:
            target_ms = max(1_000, target_ms - int(mean_ms))  # the wait part of the e2e target
        target_source = f"SLA {sla['objective']:.0%} within {int(sla['target_ms']):,} ms " \
                        f"({sla['metric']})"
    price_row = await deps.pool.fetchval(PRICE, queue)
    price = float(price_row) if price_row is not None else float(
        os.environ.get("JOBLINE_PRICE_PER_WORKER_HOUR", DEFAULT_PRICE))
    better = min(fit["mase"], key=lambda k: fit["mase"][k])
    capacity = ([y for y, _, _ in fit["prophet"]] if better == "prophet" else fit["naive"])
    points = [{"at": to_dt(now + h * HOUR).isoformat(), "jobs": round(y, 2),
               "lower": round(lo, 2), "upper": round(hi, 2)}
              for h, (y, lo, hi) in enumerate(fit["prophet"])]
    days = []
    for day in range(horizon_days):
        hours = capacity[day * 24:(day + 1) * 24]
        band = fit["prophet"][day * 24:(day + 1) * 24]
        jobs = sum(hours)
        peak = max(hours) if hours else 0.0
        slots = (scaling.slots_for(peak / 3600, mean_ms / 1000, target_ms / 1000)
                 if mean_ms else None)
        busy_h = jobs * mean_ms / HOUR if mean_ms else None
        days.append({"date": to_dt(now + day * DAY).date().isoformat(), "jobs": round(jobs, 1),
                     "lower": round(sum(b[1] for b in band), 1),
                     "upper": round(sum(b[2] for b in band), 1),
                     "peakJobsPerHour": round(peak, 1), "workersNeeded": slots,
                     "busyWorkerHours": round(busy_h, 3) if busy_h is not None else None,
                     "cost": round(busy_h * price, 4) if busy_h is not None else None})
    out = {
        "queue": queue, "horizonDays": horizon_days, "model": "prophet",
        "capacityModel": better, "backtest": {
            "holdoutHours": fit["holdoutHours"], "seasonHours": fit["season"],
            "maseProphet": round(fit["mase"]["prophet"], 4),
            "maseSeasonalNaive": round(fit["mase"]["seasonalNaive"], 4)},
        "historyHours": len(history), "points": points, "days": days,
        "assumptions": {"meanDurationMs": round(mean_ms, 1) if mean_ms else None,
                        "waitTargetMs": target_ms, "targetSource": target_source,
                        "pricePerWorkerHour": price},
        "totalCost": round(sum(x["cost"] or 0 for x in days), 4),
    }
    _cache.clear()
    _cache[key] = (time.monotonic(), out)
    return out
