"""Anomaly detection measured on many labelled incidents (issue 17, ``make ai-eval``).

The seed's month holds one incident in the span that keeps minute rollups, too few to measure
recall or detection delay. This bench generates five weeks of rollups for several queues with
the structure the detector relies on (a daily peak, quieter weekends, Poisson arrivals, a base
failure rate, log-normal run times, small queue depths) and injects labelled incidents into the
last week: failure spikes, slowdowns and stalls (throughput collapses while the backlog and the
oldest pending job's age grow). Incidents also occur, unlabelled, in the earlier weeks the
seasonal baseline reads, as they would in a real history.

The rows written are the ones the relay's fold and the scheduler's samples write live (minute
rollups, duration histograms in the shared sketch buckets, error counts, depth and oldest-age
samples, and their hour rows); the detector reads nothing else. It then runs day by day over
the last week exactly as ``jobline ai detect`` does, and each episode is matched to the
incidents: an episode of the incident's queue detected between its start and 10 minutes after
its end detects it; every other episode is a false alarm.

    python bench/anomaly_eval.py                    # writes bench/results/anomaly_eval.{json,md}
    python bench/anomaly_eval.py --queues 6 --incidents 42 --seeds 7,11,13
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import stores

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jobline.analytics.ai import anomaly
from jobline.shared.observe import sketch
from jobline.shared.platform.clock import FakeClock, to_dt
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import connect

RESULTS = Path(__file__).parent / "results"
MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
GRACE_MS = 10 * MIN
#: Midnight UTC, a Monday, so the weekly pattern starts cleanly.
START_MS = 1_793_577_600_000  # 2026-11-02T00:00:00Z
WEEKS = 5
KINDS = ("failure_spike", "slowdown", "stall")
THRESHOLDS = np.array(sketch.THRESHOLDS, dtype=np.int64)


@dataclass
class Incident:
    kind: str
    queue: str
    start: int
    end: int
    labelled: bool


def profile(minute_ms: int) -> float:
    """Arrival-rate multiplier: a daytime peak (9-18 h) and weekends at half."""
    hour = (minute_ms // HOUR) % 24
    weekday = ((minute_ms - START_MS) // DAY) % 7
    day = 1.0 if 9 <= hour < 18 else 0.55 if 7 <= hour < 21 else 0.3
    return day * (0.5 if weekday >= 5 else 1.0)


def plan(rng: np.random.Generator, queues: list[str], first_ms: int, eval_from: int,
         end_ms: int, labelled: int) -> list[Incident]:
    out: list[Incident] = []
    busy: dict[str, list[tuple[int, int]]] = defaultdict(list)

    def place(lo: int, hi: int, is_label: bool) -> None:
        for _ in range(1000):
            q = queues[int(rng.integers(len(queues)))]
            start = int(rng.integers(lo // MIN, (hi - 45 * MIN) // MIN)) * MIN
            end = start + int(rng.integers(8, 31)) * MIN
            # apart by an hour from any other incident of the queue: each is its own episode
            if all(end + HOUR <= s or start >= e + HOUR for s, e in busy[q]):
                busy[q].append((start, end))
                out.append(Incident(KINDS[len(out) % len(KINDS)], q, start, end, is_label))
                return

    for _ in range(labelled):
        place(eval_from, end_ms, True)
    # the history the baseline learns from has its incidents too (about 1 per queue-week)
    for _ in range(len(queues) * (eval_from - first_ms) // (7 * DAY)):
        place(first_ms + DAY, eval_from, False)
    return out


async def generate(deps: Any, rng: np.random.Generator, queues: list[str],
                   incidents: list[Incident], first_ms: int, end_ms: int,
                   minute_from: int) -> tuple[dict[str, int], dict[int, float]]:
    base = {q: float(rng.uniform(12, 40)) for q in queues}      # jobs/min at the peak
    fail = {q: float(rng.uniform(0.01, 0.05)) for q in queues}
    mu = {q: float(np.log(rng.uniform(80, 2_000))) for q in queues}
    by_q: dict[str, list[Incident]] = defaultdict(list)
    for inc in incidents:
        by_q[inc.queue].append(inc)
    rate_at = {id(inc): base[inc.queue] * profile(inc.start) for inc in incidents}
    roll, hist, errs, samples = [], [], [], []
    h_roll: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    h_hist: dict[tuple[int, str, int], int] = defaultdict(int)
    h_samp: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for q in queues:
        depth, oldest_s = 0.0, 0.0
        for m in range(first_ms, end_ms, MIN):
            inc = next((i for i in by_q[q] if i.start <= m < i.end), None)
            lam = base[q] * profile(m)
            f, slow, served = fail[q], 1.0, 1.0
            if inc is not None and inc.kind == "failure_spike":
                f = 0.3
            elif inc is not None and inc.kind == "slowdown":
                slow = 3.0
            elif inc is not None and inc.kind == "stall":
                served = 0.15
            arrived = int(rng.poisson(lam))
            done = int(rng.poisson(lam * served))
            failed = int(rng.binomial(done, f))
            completed = done - failed
            if served < 1.0:
                depth += arrived - done
                oldest_s += 60.0
            else:
                depth = max(0.0, depth - lam * 2) if depth > 10 else float(rng.poisson(3))
                oldest_s = float(rng.uniform(0.5, 8.0)) if depth <= 10 else oldest_s
            durations = np.exp(rng.normal(mu[q], 0.45, completed)) * slow
            buckets, counts = np.unique(np.searchsorted(THRESHOLDS, durations.astype(np.int64),
                                                        side="right"), return_counts=True)
            dur_sum = int(durations.sum())
            hour = m // HOUR * HOUR
            hr = h_roll[(hour, q)]
            hr[0] += completed
            hr[1] += failed
            hr[2] += dur_sum
            for b, n in zip(buckets.tolist(), counts.tolist(), strict=True):
                h_hist[(hour, q, b)] += n
            for metric, v in (("queue.depth", depth), ("queue.oldest_pending_ms",
                                                        oldest_s * 1000)):
                h_samp[(metric, q, hour)].append(v)
            if m < minute_from:
                continue
            dt = to_dt(m)
            roll.append((dt, q, "work", completed + failed, completed, failed, dur_sum))
            hist.extend((dt, q, "work", "duration", b, n)
                        for b, n in zip(buckets.tolist(), counts.tolist(), strict=True))
            if failed:
                et = "UpstreamError" if inc is not None and inc.kind == "failure_spike" \
                    else "Timeout"
                errs.append((dt, q, "work", et, failed))
            samples.append(("queue.depth", q, dt, depth))
            samples.append(("queue.oldest_pending_ms", q, dt, oldest_s * 1000))
    async with deps.pool.acquire() as c:
        await c.copy_records_to_table(
            "job_rollups", records=roll,
            columns=["minute", "queue_name", "job_type", "started", "completed", "failed",
                     "duration_sum_ms"])
        await c.copy_records_to_table(
            "job_rollup_histograms", records=hist,
            columns=["minute", "queue_name", "job_type", "metric", "bucket", "n"])
        await c.copy_records_to_table(
            "job_rollup_errors", records=errs,
            columns=["minute", "queue_name", "job_type", "error_type", "n"])
        await c.copy_records_to_table(
            "analytics_samples", records=samples,
            columns=["metric", "subject", "minute", "value"])
        await c.copy_records_to_table(
            "job_rollups_hour",
            records=[(to_dt(h), q, "work", v[0] + v[1], v[0], v[1], v[2])
                     for (h, q), v in h_roll.items()],
            columns=["at", "queue_name", "job_type", "started", "completed", "failed",
                     "duration_sum_ms"])
        await c.copy_records_to_table(
            "job_rollup_histograms_hour",
            records=[(to_dt(h), q, "work", "duration", b, n) for (h, q, b), n in h_hist.items()],
            columns=["at", "queue_name", "job_type", "metric", "bucket", "n"])
        await c.copy_records_to_table(
            "analytics_samples_hour",
            records=[(metric, q, to_dt(h), sum(v) / len(v), min(v), max(v), v[-1], len(v))
                     for (metric, q, h), v in h_samp.items()],
            columns=["metric", "subject", "at", "avg", "min", "max", "last", "n"])
    return ({"minuteRollups": len(roll), "minuteHistogramRows": len(hist),
             "hourRollups": len(h_roll), "hourHistogramRows": len(h_hist)}, rate_at)


#: Jobs per minute from which a queue counts as busy in the report's delay split.
BUSY = 15.0


def breakdown(trace: dict[tuple[str, str, int], dict[int, tuple[float, ...]]], inc: Incident
              ) -> dict[str, Any]:
    """Where an incident's detection delay comes from, read off the detector's scores: the
    first minute of the incident whose best score (any metric, any window) reached the
    threshold and the strong score, each as seconds from the incident's start to the end of
    that minute (a minute is scored once it is complete, so 60 s is the least delay)."""
    out: dict[str, Any] = {"thresholdS": None, "thresholdBy": None, "strongS": None}
    for m in range(inc.start, inc.end + GRACE_MS, MIN):
        best, by = 0.0, None
        for metric in anomaly.METRICS:
            for w, (s, *_) in trace.get((inc.queue, metric, m), {}).items():
                if s > best:
                    best, by = s, f"{metric}/{w}m"
        if out["thresholdS"] is None and best >= anomaly.THRESHOLD:
            out["thresholdS"], out["thresholdBy"] = (m + MIN - inc.start) / 1000, by
        if out["strongS"] is None and best >= anomaly.STRONG:
            out["strongS"] = (m + MIN - inc.start) / 1000
            break
    return out


def match(found: list[dict[str, Any]], incidents: list[Incident], queues: int,
          days: int, rate_at: dict[int, float]) -> dict[str, Any]:
    matched: set[int] = set()
    per = []
    for inc in incidents:
        hits = [i for i, a in enumerate(found)
                if a["queue"] == inc.queue and inc.start <= a["detectedAtMs"] <= inc.end + GRACE_MS]
        matched.update(hits)
        first = min((found[i]["detectedAtMs"] for i in hits), default=None)
        per.append({"kind": inc.kind, "queue": inc.queue, "startsAt": to_dt(inc.start).isoformat(),
                    "minutes": (inc.end - inc.start) // MIN, "detected": first is not None,
                    "jobsPerMin": round(rate_at[id(inc)], 1),
                    "delayS": (first - inc.start) / 1000 if first is not None else None,
                    "metrics": sorted({found[i]["metric"] for i in hits})})
    false = [a for i, a in enumerate(found) if i not in matched]
    det = [x for x in per if x["detected"]]
    delays = sorted(x["delayS"] for x in det)
    by_kind = {k: {"incidents": sum(1 for x in per if x["kind"] == k),
                   "detected": sum(1 for x in det if x["kind"] == k),
                   "medianDelayS": statistics.median([x["delayS"] for x in det
                                                      if x["kind"] == k] or [0])}
               for k in KINDS}
    busy = sorted(x["delayS"] for x in det if x["jobsPerMin"] >= BUSY)
    quiet = sorted(x["delayS"] for x in det if x["jobsPerMin"] < BUSY)
    return {"incidents": len(per), "detected": len(det),
            "medianDelayBusyS": statistics.median(busy) if busy else None,
            "medianDelayQuietS": statistics.median(quiet) if quiet else None,
            "busyIncidents": sum(1 for x in per if x["jobsPerMin"] >= BUSY),
            "busyDetected": len(busy),
            "recall": len(det) / len(per) if per else None,
            "episodes": len(found), "falseAlarms": len(false),
            "falseAlarmsPerQueuePerDay": len(false) / queues / days,
            "falseByMetric": dict(Counter(a["metric"] for a in false)),
            "medianDelayS": statistics.median(delays) if delays else None,
            "p90DelayS": delays[int(0.9 * (len(delays) - 1))] if delays else None,
            "maxDelayS": delays[-1] if delays else None,
            "byKind": by_kind, "perIncident": per}


async def run(n_queues: int, labelled: int, seed_value: int,
              trace_out: str | None = None) -> dict[str, Any]:
    rng = np.random.default_rng(seed_value)
    queues = [f"q{i}" for i in range(n_queues)]
    first_ms, end_ms = START_MS, START_MS + WEEKS * 7 * DAY
    eval_from = end_ms - 7 * DAY
    incidents = plan(rng, queues, first_ms, eval_from, end_ms, labelled)
    clock = FakeClock(end_ms)
    async with stores.local("anomalyeval", external=False) as svc:
        settings = Settings().with_(database_url=svc.database_url, redis_url=svc.redis_url,
                                    redis_prefix="anomalyeval", events=False)
        deps = await connect(settings, clock=clock)
        try:
            t = time.perf_counter()
            rows, rate_at = await generate(deps, rng, queues, incidents, first_ms, end_ms,
                                           eval_from - DAY)
            generated = time.perf_counter() - t
            t = time.perf_counter()
            found: list[dict[str, Any]] = []
            trace: dict[tuple[str, str, int], dict[int, tuple[float, ...]]] = {}
            for d in range(eval_from, end_ms, DAY):
                found += await anomaly.detect(deps, d, d + DAY, trace=trace)
            detected_s = time.perf_counter() - t
        finally:
            await deps.close()
    labelled_incidents = [i for i in incidents if i.labelled]
    out = match(found, labelled_incidents, n_queues, 7, rate_at)
    for x, inc in zip(out["perIncident"], labelled_incidents, strict=True):
        x.update(breakdown(trace, inc))
    if trace_out is not None:
        Path(trace_out).write_text(json.dumps({
            "seed": seed_value, "incidents": [vars(i) for i in incidents],
            "rateAt": [rate_at[id(i)] if i.labelled else None for i in incidents],
            "trace": [[q, metric, m, {str(w): [round(x, 4) for x in sv] for w, sv in ws.items()}]
                      for (q, metric, m), ws in trace.items()]}))
    return {"queues": n_queues, "weeks": WEEKS, "seed": seed_value, "rows": rows,
            "generateSeconds": round(generated, 1), "detectSeconds": round(detected_s, 1),
            "config": {"windowMin": anomaly.WINDOW_MIN, "threshold": anomaly.THRESHOLD,
                       "confirm": anomaly.CONFIRM, "strong": anomaly.STRONG,
                       "quietMin": anomaly.QUIET_MIN},
            **out}


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Pool several seeds' incidents and episodes (one figure over all of them)."""
    per = [dict(x, seed=r["seed"]) for r in runs for x in r["perIncident"]]
    det = [x for x in per if x["detected"]]
    delays = sorted(x["delayS"] for x in det)
    busy = sorted(x["delayS"] for x in det if x["jobsPerMin"] >= BUSY)
    quiet = sorted(x["delayS"] for x in det if x["jobsPerMin"] < BUSY)
    false = sum(r["falseAlarms"] for r in runs)
    by_metric: Counter[str] = Counter()
    for r in runs:
        by_metric.update(r["falseByMetric"])
    q = runs[0]["queues"]
    return {
        "queues": q, "weeks": WEEKS, "seeds": [r["seed"] for r in runs],
        "config": runs[0]["config"], "incidents": len(per), "detected": len(det),
        "recall": len(det) / len(per), "episodes": sum(r["episodes"] for r in runs),
        "falseAlarms": false, "falseAlarmsPerQueuePerDay": false / q / 7 / len(runs),
        "falseByMetric": dict(by_metric),
        "medianDelayS": statistics.median(delays) if delays else None,
        "p90DelayS": delays[int(0.9 * (len(delays) - 1))] if delays else None,
        "maxDelayS": delays[-1] if delays else None,
        "medianDelayBusyS": statistics.median(busy) if busy else None,
        "medianDelayQuietS": statistics.median(quiet) if quiet else None,
        "busyIncidents": sum(1 for x in per if x["jobsPerMin"] >= BUSY),
        "busyDetected": len(busy),
        "medianThresholdS": statistics.median([x.get("thresholdS") or x["delayS"]
                                               for x in det]) if det else None,
        "confirmed": sum(1 for x in det
                         if x["delayS"] > (x.get("thresholdS") or x["delayS"])),
        "byKind": {k: {"incidents": sum(1 for x in per if x["kind"] == k),
                       "detected": sum(1 for x in det if x["kind"] == k),
                       "medianDelayS": statistics.median([x["delayS"] for x in det
                                                          if x["kind"] == k] or [0])}
                   for k in KINDS},
        "perIncident": per, "runs": [{k: v for k, v in r.items() if k != "perIncident"}
                                     for r in runs]}


def markdown(r: dict[str, Any]) -> str:
    def g(v: Any, fmt: str = ".0f") -> str:
        return "—" if v is None else format(v, fmt)

    c = r["config"]
    return "\n".join([
        f"# Anomaly detection on {r['incidents']} labelled incidents "
        f"({r['queues']} queues, the last of {r['weeks']} weeks; seeds "
        f"{', '.join(map(str, r['seeds']))}, pooled)", "",
        "Generated by `python bench/anomaly_eval.py` (`make ai-eval`). Detector: "
        f"{c['windowMin']}-minute windows scored every minute, threshold {c['threshold']}, "
        f"confirmed on {c['confirm']} consecutive minutes (at once from {c['strong']}), "
        f"ended after {c['quietMin']} quiet minutes.", "",
        "| measure | value | goal |", "|---|---:|---|",
        f"| event-level recall | {r['detected']}/{r['incidents']} = {r['recall']:.2f} | ≥ 0.9 |",
        f"| false alarms per queue per day | {r['falseAlarmsPerQueuePerDay']:.2f} "
        f"({r['falseAlarms']} episodes) | ≤ 1 |",
        f"| detection delay, median / p90 / max | {g(r['medianDelayS'])} / {g(r['p90DelayS'])} "
        f"/ {g(r['maxDelayS'])} s | ≤ 120 s |",
        f"| median delay, busy queues (≥ {BUSY:.0f} jobs/min at the start; "
        f"{r['busyDetected']}/{r['busyIncidents']} detected) | {g(r['medianDelayBusyS'])} s | "
        "≤ 120 s |",
        f"| median delay, quieter queues | {g(r['medianDelayQuietS'])} s | ≤ 120 s |", "",
        f"False alarms by metric: {r['falseByMetric'] or 'none'}.", "",
        "| kind | incidents | detected | median delay s |", "|---|---:|---:|---:|",
        *[f"| {k} | {v['incidents']} | {v['detected']} | {v['medianDelayS']:.0f} |"
          for k, v in r["byKind"].items()], "",
        "Where the delay comes from (per incident below): a minute is scored once it is "
        "complete, so 60 s is the least delay; *threshold s* is when the first minute whose "
        f"best score (any metric, any window) reached {c['threshold']} was complete, *strong s* "
        f"the same for {c['strong']}; the rest of the delay is the confirmation minute. "
        f"Medians over the detected incidents: threshold {g(r['medianThresholdS'])} s, "
        f"detection {g(r['medianDelayS'])} s; confirmation added 60 s or more to "
        f"{r['confirmed']} of {r['detected']}.", "",
        "| seed | incident | queue | starts | jobs/min | minutes | detected | delay s | "
        "threshold s (by) | strong s | metrics |",
        "|---:|---|---|---|---:|---:|---|---:|---|---:|---|",
        *[f"| {x['seed']} | {x['kind']} | {x['queue']} | {x['startsAt'][:16]} | "
          f"{x['jobsPerMin']} | "
          f"{x['minutes']} | {x['detected']} | {g(x['delayS'])} | "
          f"{g(x.get('thresholdS'))} ({x.get('thresholdBy') or '—'}) | {g(x.get('strongS'))} | "
          f"{', '.join(x['metrics'])} |"
          for x in r["perIncident"]], "",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queues", type=int, default=6)
    ap.add_argument("--incidents", type=int, default=42)
    ap.add_argument("--seeds", default="7,11,13", help="comma-separated; results are pooled")
    ap.add_argument("--strong", type=float, default=None,
                    help="override anomaly.STRONG (compare configurations)")
    ap.add_argument("--confirm", type=int, default=None, help="override anomaly.CONFIRM")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--trace", default=None,
                    help="also write every scored minute to TRACE-<seed>.json (delay analysis)")
    a = ap.parse_args()
    if a.strong is not None:
        anomaly.STRONG = a.strong
    if a.confirm is not None:
        anomaly.CONFIRM = a.confirm
    r = combine([asyncio.run(run(a.queues, a.incidents, int(s),
                                 f"{a.trace}-{s}.json" if a.trace else None))
                 for s in a.seeds.split(",")])
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "anomaly_eval.json").write_text(json.dumps(r, indent=2) + "\n")
    (out / "anomaly_eval.md").write_text(markdown(r))
    print(markdown(r).split("\n\n| seed |")[0])


if __name__ == "__main__":
    main()
