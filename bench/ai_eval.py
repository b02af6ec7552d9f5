"""AI evaluation on a seeded history (issue 17, ``make ai-eval``).

Seeds a fresh embedded store with ``jobline seed`` (its rollups rebuilt from the raw rows, its
incidents labelled in ``labelled_incidents``), then measures each model against its baseline,
always on data later in time than what the model learnt from:

- **prediction**: ``predict.train`` over the last ``--train-days`` days; its holdout is the
  newest 20% of attempts by time. ROC-AUC, PR-AUC, accuracy, Brier, ECE of the model and of the
  per-type historical rate.
- **anomalies**: the detector run minute by minute over the days that have minute rollups
  (``JOBLINE_ROLLUP_MINUTE_DAYS``), against the labelled incidents that start in that span:
  event-level recall (an episode of the incident's queue detected between its start and 10
  minutes after its end; an incident without a queue matches any queue), false alarms (episodes
  matching no incident) per queue per day, and the detection delay.
- **forecasts**: each queue's 7-day forecast backtest, MASE of Prophet and of seasonal naive.
- **DLQ grouping**: the root-cause groups of the dead letters against the seed's error
  families (the error type each dead letter was generated with): purity, completeness and
  pairwise F1.

Then the simulator section (:mod:`ai_sim`, in its own store): a history generated through the
real engine, prediction on it, scaling advice against a reactive policy, and the retry replay
(fixed exponential policy vs adaptive retries).

    python bench/ai_eval.py --jobs 1M          # writes bench/results/ai_eval.{json,md}
    python bench/ai_eval.py --no-seed --sim-jobs 20000 --sim-days 10   # the simulator only
    python bench/ai_eval.py --no-seed --sim-jobs 12000 --sim-days 14 --sim-only scaling
        # the scaling comparison only (the simulator's other sections kept from the last run)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import ai_sim
import stores

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jobline.analytics.ai import anomaly, dlq, forecast, predict
from jobline.analytics.seed import parse_count, seed
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect

RESULTS = Path(__file__).parent / "results"
MIN = 60_000
DAY = 86_400_000
#: An episode up to this long after an incident's end still counts as detecting it.
GRACE_MS = 10 * MIN


def pairwise_f1(labels: list[str], groups: list[str]) -> float:
    def pairs(keys: list[Any]) -> int:
        return sum(n * (n - 1) // 2 for n in Counter(keys).values())
    tp = pairs(list(zip(labels, groups, strict=True)))
    p, r = tp / max(pairs(groups), 1), tp / max(pairs(labels), 1)
    return 2 * p * r / (p + r) if p + r else 0.0


async def eval_prediction(deps: Deps, days: int) -> dict[str, Any]:
    t = time.perf_counter()
    out = await predict.train(deps, days=days)
    return {"seconds": round(time.perf_counter() - t, 1), "rows": out["rows"],
            "features": out["features"], "model": out["model"], "baseline": out["baseline"]}


async def eval_anomalies(deps: Deps, now_ms: int, days: int) -> dict[str, Any]:
    lo = now_ms - days * DAY
    t = time.perf_counter()
    await deps.pool.execute("DELETE FROM ai_anomalies")
    found = await anomaly.detect(deps, lo, now_ms)
    seconds = time.perf_counter() - t
    incidents = [dict(r) for r in await deps.pool.fetch(
        "SELECT kind, queue_name, starts_at, ends_at FROM labelled_incidents "
        "WHERE source = 'seed' AND starts_at >= $1 AND starts_at < $2 ORDER BY starts_at",
        to_dt(lo), to_dt(now_ms))]
    matched: set[int] = set()
    per_incident = []
    for inc in incidents:
        s, e = from_dt(inc["starts_at"]), from_dt(inc["ends_at"])
        hits = [i for i, a in enumerate(found)
                if s <= a["detectedAtMs"] <= e + GRACE_MS
                and (inc["queue_name"] is None or a["queue"] == inc["queue_name"])]
        matched.update(hits)
        first = min((found[i]["detectedAtMs"] for i in hits), default=None)
        per_incident.append({
            "kind": inc["kind"], "queue": inc["queue_name"],
            "startsAt": inc["starts_at"].isoformat(),
            "detected": first is not None,
            "delayS": round((first - s) / 1000) if first is not None else None,
            "metrics": sorted({found[i]["metric"] for i in hits})})
    queues = {a["queue"] for a in found} | {
        r["queue_name"] for r in await deps.pool.fetch(
            "SELECT DISTINCT queue_name FROM job_rollups_day")}
    false = [a for i, a in enumerate(found) if i not in matched]
    detected = [x for x in per_incident if x["detected"]]
    return {
        "seconds": round(seconds, 1), "days": days, "queues": len(queues),
        "incidents": len(incidents), "detected": len(detected),
        "recall": len(detected) / len(incidents) if incidents else None,
        "episodes": len(found), "falseAlarms": len(false),
        "falseAlarmsPerQueuePerDay": len(false) / max(1, len(queues)) / days,
        "medianDelayS": statistics.median(x["delayS"] for x in detected) if detected else None,
        "maxDelayS": max((x["delayS"] for x in detected), default=None),
        "perIncident": per_incident,
        "falseByMetric": dict(Counter(a["metric"] for a in false)),
    }


async def eval_forecasts(deps: Deps) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in await deps.pool.fetch("SELECT DISTINCT queue_name FROM job_rollups_day ORDER BY 1"):
        q = r["queue_name"]
        try:
            f = await forecast.forecast(deps, q, 7)
        except Exception as e:  # a queue with too little history: reported, not fatal
            out[q] = {"error": str(e)}
            continue
        out[q] = {**f["backtest"], "capacityModel": f["capacityModel"]}
    ok = [v for v in out.values() if "maseProphet" in v]
    return {"queues": out,
            "medianMaseProphet": statistics.median(v["maseProphet"] for v in ok) if ok else None,
            "medianMaseSeasonalNaive": (statistics.median(v["maseSeasonalNaive"] for v in ok)
                                        if ok else None),
            "prophetBetter": sum(v["maseProphet"] < v["maseSeasonalNaive"] for v in ok)}


async def eval_dlq(deps: Deps) -> dict[str, Any]:
    out = await dlq.insights(deps, limit=dlq.MAX_LIMIT)
    rows = await deps.pool.fetch(
        "SELECT id, coalesce(error_type, 'unknown') AS family FROM jobs "
        "WHERE status = 'dead_letter' ORDER BY id DESC LIMIT $1", dlq.MAX_LIMIT)
    family = {str(r["id"]): r["family"] for r in rows}
    # the groups' members: recompute with the same rows (insights reports only samples)
    groups = dlq._groups(await dlq._rows(deps, None, None, dlq.MAX_LIMIT))
    labels, assigned = [], []
    for c in groups:
        for m in c.members:
            labels.append(family[str(m.id)])
            assigned.append(c.group_id)
    n = len(labels)
    purity = sum(Counter(family[str(m.id)] for m in c.members).most_common(1)[0][1]
                 for c in groups) / max(1, n)
    by_family: dict[str, Counter[str]] = defaultdict(Counter)
    for lab, g in zip(labels, assigned, strict=True):
        by_family[lab][g] += 1
    completeness = sum(c.most_common(1)[0][1] for c in by_family.values()) / max(1, n)
    return {"deadLetters": n, "groups": len(groups), "families": len(by_family),
            "purity": purity, "completeness": completeness,
            "pairwiseF1": pairwise_f1(labels, assigned),
            "top": [{"template": g["template"], "count": g["count"], "retryable": g["retryable"]}
                    for g in out["groups"][:8]]}


async def run(jobs: int, days: int, seed_value: int, train_days: int,
              base_dir: str | None) -> dict[str, Any]:
    async with stores.local("aieval", external=False, base_dir=base_dir) as svc:
        settings = Settings().with_(database_url=svc.database_url, redis_url=svc.redis_url,
                                    redis_prefix="aieval")
        deps = await connect(settings)
        try:
            t = time.perf_counter()
            rep = await seed(deps, jobs=jobs, days=days, seed_value=seed_value)
            seeded = time.perf_counter() - t
            minute_days = int(os.environ.get("JOBLINE_ROLLUP_MINUTE_DAYS", "7"))
            now = deps.clock.now_ms() // MIN * MIN
            result = {
                "jobs": rep.jobs, "days": days, "seed": seed_value,
                "seedSeconds": round(seeded, 1),
                "prediction": await eval_prediction(deps, train_days),
                "anomalies": await eval_anomalies(deps, now, min(minute_days, days)),
                "forecasts": await eval_forecasts(deps),
                "dlq": await eval_dlq(deps),
            }
        finally:
            await deps.close()
    return result


def markdown(r: dict[str, Any]) -> str:
    p, a, f, d = r["prediction"], r["anomalies"], r["forecasts"], r["dlq"]
    m, b = p["model"], p["baseline"]

    def g(v: Any, fmt: str = ".3f") -> str:
        return "—" if v is None else format(v, fmt)

    lines = [
        f"## Seed: a {r['jobs']:,}-job, {r['days']}-day `jobline seed` history "
        f"(seed {r['seed']})", "",
        f"### Failure prediction (holdout: newest {p['rows']['holdout']:,} attempts; "
        f"failure rate {m['failureRate']:.3f})", "",
        "| | model | baseline (type rate) | goal |", "|---|---:|---:|---|",
        f"| ROC-AUC | {g(m['rocAuc'])} | {g(b['rocAuc'])} | ≥ 0.85 |",
        f"| PR-AUC | {g(m['prAuc'])} | {g(b['prAuc'])} | ≥ 2 x {m['failureRate']:.3f} |",
        f"| accuracy | {g(m['accuracy'])} | {g(b['accuracy'])} | ≥ 0.85 |",
        f"| Brier | {g(m['brier'], '.4f')} | {g(b['brier'], '.4f')} | lower |",
        f"| ECE | {g(m['ece'], '.4f')} | {g(b['ece'], '.4f')} | lower |", "",
        f"### Anomalies (last {a['days']} days, {a['queues']} queues)", "",
        f"- incidents: {a['incidents']}, detected {a['detected']} "
        f"(recall {g(a['recall'], '.2f')}; goal ≥ 0.9)",
        f"- episodes {a['episodes']}, false alarms {a['falseAlarms']} = "
        f"{a['falseAlarmsPerQueuePerDay']:.2f} per queue per day (goal ≤ 1); by metric "
        f"{a['falseByMetric']}",
        f"- delay: median {g(a['medianDelayS'], '.0f')} s, max {g(a['maxDelayS'], '.0f')} s "
        f"(goal ≤ 120 s)", "",
        "| incident | queue | starts | detected | delay s | metrics |", "|---|---|---|---|---:|---|",
        *[f"| {x['kind']} | {x['queue'] or 'any'} | {x['startsAt'][:16]} | {x['detected']} | "
          f"{g(x['delayS'], '.0f')} | {', '.join(x['metrics'])} |" for x in a["perIncident"]], "",
        "### Forecasts (7-day backtest, MASE; lower is better)", "",
        f"Median MASE: Prophet {g(f['medianMaseProphet'])}, seasonal naive "
        f"{g(f['medianMaseSeasonalNaive'])}; Prophet better on {f['prophetBetter']} of "
        f"{len(f['queues'])} queues.", "",
        "| queue | Prophet | seasonal naive | capacity model |", "|---|---:|---:|---|",
        *[f"| {q} | {g(v.get('maseProphet'))} | {g(v.get('maseSeasonalNaive'))} | "
          f"{v.get('capacityModel', v.get('error', ''))} |" for q, v in f["queues"].items()], "",
        f"### DLQ grouping ({d['deadLetters']:,} dead letters, {d['families']} error families)", "",
        f"- {d['groups']} groups; purity {d['purity']:.3f}, completeness "
        f"{d['completeness']:.3f}, pairwise F1 {d['pairwiseF1']:.3f} (goal ≥ 0.9)", "",
        "Retries and scaling need the simulator: see its section.", "",
    ]
    return "\n".join(lines)


def report(r: dict[str, Any]) -> str:
    parts = ["# AI evaluation (`make ai-eval`)", "",
             "Generated by `python bench/ai_eval.py`; every figure is on data newer than what "
             "the model learnt from. Two histories: `jobline seed`'s (written straight into the "
             "tables) and the simulator's (run through the engine).", ""]
    if "seed" in r:
        parts.append(markdown(r["seed"]))
    if "simulator" in r:
        parts.append(ai_sim.markdown(r["simulator"]))
    return "\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", default="1M")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--train-days", type=int, default=7)
    ap.add_argument("--data-dir", default=None, help="where the store lives (default /dev/shm)")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--no-seed", action="store_true", help="skip the seeded history")
    ap.add_argument("--no-sim", action="store_true",
                    help="skip the simulator (its section is kept from the last run's file)")
    ap.add_argument("--sim-only", default=None,
                    help="comma-separated simulator evaluations to run (prediction, scaling, "
                         "retries); the others are kept from the last run's file")
    ai_sim.add_args(ap, "sim-")
    args = ap.parse_args()
    r: dict[str, Any] = {}
    previous = Path(args.out) / "ai_eval.json"
    old: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() else {}
    if args.no_seed and old:
        # keep the seed section of the last full run (older files hold it at the top level)
        if "prediction" in old:
            r["seed"] = old
        elif isinstance(old.get("seed"), dict):
            r["seed"] = old["seed"]
    if args.no_sim and isinstance(old.get("simulator"), dict):
        r["simulator"] = old["simulator"]  # kept from the last run, like the seed's
    sim_parts = frozenset(p for p in (args.sim_only or "").split(",") if p)
    if not sim_parts <= ai_sim.PARTS:
        ap.error(f"--sim-only: unknown {sorted(sim_parts - ai_sim.PARTS)}")
    if not args.no_seed:
        r["seed"] = asyncio.run(run(parse_count(args.jobs), args.days, args.seed,
                                    args.train_days, args.data_dir))
    if not args.no_sim:
        sim = asyncio.run(ai_sim.run_all(seed=args.seed, base_dir=args.data_dir,
                                         parts=sim_parts, **ai_sim.kwargs(args, "sim-")))
        kept = old.get("simulator") if sim_parts else None
        if isinstance(kept, dict):
            # the evaluations not re-run stay as the last run made them (same history: the
            # same sizes and seed are checked)
            same = all(kept.get(k) == sim[k] for k in ("jobs", "days", "seed", "tickS"))
            if not same:
                ap.error("--sim-only: the last run's simulator section has other sizes")
            sim = {**{k: v for k, v in kept.items() if k in ai_sim.PARTS - sim_parts}, **sim}
        r["simulator"] = sim
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ai_eval.json").write_text(json.dumps(r, indent=2, default=str))
    (out / "ai_eval.md").write_text(report(r))
    print(report(r))


if __name__ == "__main__":
    main()
