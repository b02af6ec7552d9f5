"""The top issues of a time range, ranked by impact (issue 17; docs/ai.md "Top issues").

Candidates come from five computations over the stored history, never canned text:

* ``dead_letters``: the DLQ root-cause groups (:func:`jobline.analytics.ai.dlq.insights`) with a
  member dead-lettered in the range; jobs at stake = the group's dead letters.
* ``anomaly``: anomaly episodes detected in the range
  (:func:`jobline.analytics.ai.anomaly.list_anomalies`); jobs at stake = the jobs the queue
  finished (completed + failed attempts, rollups) while the episode lasted: the work exposed to it.
* ``sla``: queues whose SLA (``queue_slas``) was missed in the range
  (:func:`jobline.analytics.query.sla`); jobs at stake = the jobs over the target, SLA minutes
  at stake = the minutes they spent over it (histogram buckets above the target, each at its
  representative value).
* ``slow_job_type``: job types whose p95 run time in the range is at least ``SLOW_RATIO`` times
  their own p95 over the previous equal period, or whose attempts timed out; jobs at stake = the
  runs slower than that baseline p95 beyond the 5% expected there, plus the timed-out attempts.
* ``retry_storm``: job types with at least ``STORM_MIN`` retries (attempts after the first,
  ``job_rollup_attempts``) that failed again, at a retry failure rate of at least
  ``STORM_RATE``; jobs at stake = those failed retries.

Ranking: every kind is expressed in **jobs at stake** (``impactJobs``) and ranked by it,
descending. SLA minutes are not converted into jobs with an exchange rate: an SLA issue's jobs at
stake are already its late jobs, and ``impactSlaMinutes`` (reported for SLA issues, 0 otherwise)
breaks ties, then kind, queue and job type (a deterministic order).

Invariants: reads only; the same store and range give the same issues in the same order (the
``detail`` text may be narrated, see :mod:`jobline.analytics.ai.narrate`).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any
from urllib.parse import urlencode

from jobline.analytics import query as aq
from jobline.analytics.ai import anomaly, narrate
from jobline.analytics.ai import dlq as dlq_ai
from jobline.shared.observe import sketch
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.connections import Deps

TOP = 3
#: p95 at least this many times the previous period's p95 is a slowdown.
SLOW_RATIO = 2.0
#: Runs needed in both periods to compare p95s.
SLOW_MIN_RUNS = 20
#: Timed-out attempts that make a job type slow regardless of its p95.
TIMEOUT_MIN = 5
#: Failed retries (attempt >= 2) that make a storm, and the retry failure rate needed.
STORM_MIN = 10
STORM_RATE = 0.5

FINISHED = """
SELECT coalesce(sum(completed + failed), 0)::float8 FROM job_rollups
 WHERE queue_name = $1 AND minute >= $2 AND minute < $3
"""


def _link(path: str, **params: str | None) -> str:
    qs = urlencode({k: v for k, v in params.items() if v})
    return path + (f"?{qs}" if qs else "")


def _issue(kind: str, title: str, detail: str, queue: str | None, job_type: str | None,
           jobs: float, sla_minutes: float, link: str, facts: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "title": title, "detail": detail, "queue": queue, "jobType": job_type,
            "impactJobs": round(jobs, 1), "impactSlaMinutes": round(sla_minutes, 1),
            "link": link, "narrated": False, "_facts": facts}


async def _dead_letters(deps: Deps, s: aq.Scope) -> list[dict[str, Any]]:
    out = []
    for g in (await dlq_ai.insights(deps, narrated=False))["groups"]:
        if g["lastSeenMs"] < s.from_ms or g["firstSeenMs"] >= s.to_ms:
            continue
        jt, q = g["jobTypes"][0], g["queues"][0]
        detail = (f"{g['count']:,} dead letters with {g['errorTypes'][0]} "
                  f"\"{g['template'][:120]}\" ({'retryable' if g['retryable'] else 'not retryable'}"
                  f"): {g['suggestion']}")
        out.append(_issue(
            "dead_letters", f"{g['count']:,} dead letters in {jt}: {g['errorTypes'][0]}", detail,
            q, jt, g["count"], 0.0, _link("/dead-letters", jobType=jt),
            {"template": g["template"], "errorType": g["errorTypes"][0], "count": g["count"],
             "jobTypes": g["jobTypes"], "queues": g["queues"], "retryable": g["retryable"],
             "evidence": g["evidence"]}))
    return out


async def _anomalies(deps: Deps, s: aq.Scope) -> list[dict[str, Any]]:
    out = []
    for a in await anomaly.list_anomalies(deps, s.from_ms, s.to_ms):
        end = a["endedAtMs"] if a["endedAtMs"] is not None else a["lastSeenMs"] + aq.MINUTE
        jobs = float(await deps.pool.fetchval(FINISHED, a["queue"], to_dt(a["detectedAtMs"]),
                                              to_dt(max(end, a["detectedAtMs"] + aq.MINUTE))))
        metric = a["metric"].replace("_", " ")
        causes = a["possibleCauses"]
        detail = (f"{metric} on {a['queue']} was {a['currentValue']:,.3g} against a baseline of "
                  f"{a['baseline']:,.3g} (score {a['peakScore']:g}); {jobs:,.0f} jobs finished "
                  f"during the episode" + (f". Possible causes: {'; '.join(causes)}"
                                           if causes else ""))
        out.append(_issue(
            "anomaly", f"Anomalous {metric} on {a['queue']}", detail, a["queue"], None,
            max(jobs, 1.0), 0.0, _link("/analytics/queues", queue=a["queue"]),
            {"metric": a["metric"], "queue": a["queue"], "currentValue": a["currentValue"],
             "baseline": a["baseline"], "score": a["peakScore"], "causes": causes}))
    return out


async def _sla(deps: Deps, s: aq.Scope) -> list[dict[str, Any]]:
    missed = [r for r in await aq.sla(deps, s) if r["met"] is False]
    if not missed:
        return []
    hist = await aq._hist(deps, [(0, s)], sorted({r["metric"] for r in missed}),
                          by=("queue_name",))
    over: dict[str, float] = defaultdict(float)
    targets = {r["queue"]: r for r in missed}
    for h in hist:
        r = targets.get(h["queue_name"])
        if r is None or h["metric"] != r["metric"]:
            continue
        rep = sketch.representative(h["bucket"])
        if rep > r["targetMs"]:
            over[r["queue"]] += (rep - r["targetMs"]) * h["n"] / aq.MINUTE
    out = []
    for r in missed:
        q = r["queue"]
        detail = (f"{r['compliance']:.1%} of {q}'s jobs within {aq._ms(r['targetMs'])} "
                  f"({r['metric']}), objective {r['objective']:.1%}: {r['violations']:,.0f} "
                  f"jobs over the target, {over[q]:,.1f} minutes over it in all")
        out.append(_issue("sla", f"SLA missed on {q}", detail, q, None, r["violations"],
                          over[q], _link("/analytics/sla", queue=q),
                          {"queue": q, "metric": r["metric"], "count": r["violations"],
                           "impactSlaMinutes": round(over[q], 1)}))
    return out


async def _slow(deps: Deps, s: aq.Scope) -> list[dict[str, Any]]:
    q = await aq._sql(deps)
    src = q.source("errors", [(0, s)])
    hist, errs = await asyncio.gather(
        aq._hist(deps, [(0, s), (1, s.previous())], ["duration"],
                 by=("queue_name", "job_type")),
        deps.pool.fetch(f"SELECT queue_name, job_type, sum(n)::float8 AS n FROM {src} "
                        "WHERE error_type ILIKE '%timeout%' OR error_type ILIKE '%timedout%' "
                        "GROUP BY 1, 2", *q.params))
    per: dict[tuple[str, str], dict[int, dict[int, int]]] = defaultdict(
        lambda: {0: defaultdict(int), 1: defaultdict(int)})
    for h in hist:
        per[(h["queue_name"], h["job_type"])][h["period"]][h["bucket"]] += int(h["n"])
    timeouts = {(r["queue_name"], r["job_type"]): r["n"] for r in errs}
    out = []
    for k in sorted(set(per) | set(timeouts)):
        now, before = per[k][0], per[k][1]
        n_now, n_before = sum(now.values()), sum(before.values())
        p95 = sketch.percentile(now.items(), 95)
        base = sketch.percentile(before.items(), 95)
        slower = (p95 is not None and base and n_now >= SLOW_MIN_RUNS
                  and n_before >= SLOW_MIN_RUNS and p95 >= SLOW_RATIO * base)
        t_out = timeouts.get(k, 0.0)
        if not slower and t_out < TIMEOUT_MIN:
            continue
        jobs = t_out
        parts = []
        if slower and base is not None and p95 is not None:
            base_b = sketch.bucket(int(base))
            jobs += max(0.0, sum(c for b, c in now.items() if b > base_b) - 0.05 * n_now)
            parts.append(f"p95 {aq._ms(p95)} is {p95 / base:.1f}x its previous-period p95 "
                         f"{aq._ms(base)}")
        if t_out:
            parts.append(f"{t_out:,.0f} attempts timed out")
        detail = f"{k[1]} on {k[0]}: " + "; ".join(parts)
        out.append(_issue("slow_job_type", f"{k[1]} is slow", detail, k[0], k[1], jobs, 0.0,
                          _link("/analytics/queues", queue=k[0], jobType=k[1]),
                          {"queue": k[0], "jobType": k[1], "text": detail}))
    return out


async def _retry_storms(deps: Deps, s: aq.Scope) -> list[dict[str, Any]]:
    q = await aq._sql(deps)
    src = q.source("attempts", [(0, s)])
    rows = await deps.pool.fetch(
        f"SELECT queue_name, job_type, sum(failed)::float8 AS failed, "
        f"sum(completed)::float8 AS completed FROM {src} WHERE attempt >= 2 GROUP BY 1, 2",
        *q.params)
    out = []
    for r in rows:
        failed, done = r["failed"], r["completed"]
        if failed < STORM_MIN or failed / (failed + done) < STORM_RATE:
            continue
        k = (r["queue_name"], r["job_type"])
        detail = (f"{failed:,.0f} of {failed + done:,.0f} retries of {k[1]} on {k[0]} failed "
                  f"again ({failed / (failed + done):.0%}): retrying is not helping; look at "
                  "its errors or make them non-retryable")
        out.append(_issue("retry_storm", f"Retry storm in {k[1]}", detail, k[0], k[1], failed,
                          0.0, _link("/analytics/retries", queue=k[0], jobType=k[1]),
                          {"queue": k[0], "jobType": k[1], "count": failed, "text": detail}))
    return out


async def top_issues(deps: Deps, from_ms: int | None = None, to_ms: int | None = None,
                     limit: int = TOP) -> dict[str, Any]:
    """The ``limit`` issues of ``[from, to)`` (default: the last 24 hours) with the most jobs at
    stake (see the module docstring); ``detail`` narrated when an LLM is configured."""
    s = aq.scope(deps.clock.now_ms(), from_ms, to_ms)
    found = await asyncio.gather(_dead_letters(deps, s), _anomalies(deps, s), _sla(deps, s),
                                 _slow(deps, s), _retry_storms(deps, s))
    issues = [i for group in found for i in group]
    issues.sort(key=lambda i: (-i["impactJobs"], -i["impactSlaMinutes"], i["kind"],
                               i["queue"] or "", i["jobType"] or ""))
    top = issues[:limit]
    texts = await narrate.phrase_many(
        deps.settings, "Explain this operational issue and what to do about it.",
        [({**i.pop("_facts"), "kind": i["kind"], "title": i["title"], "text": i["detail"],
           "impactJobs": i["impactJobs"]}, i["detail"]) for i in top])
    for i, (text, narrated) in zip(top, texts, strict=True):
        i["detail"], i["narrated"] = text, narrated
    return {"issues": top}
