"""Training the retry advisor's recovery table (:mod:`jobline.shared.retry.adaptive`).

Every counted failure in the window that was followed by another attempt of the same job is
one observation: the job type, the error type, the time from the failure to the next attempt's
start, and whether that attempt succeeded. PostgreSQL aggregates them per (job type, error
type) and gap bucket, and pooled per error type; the table is stored as JSON in ``ai_models``
(kind ``retry_advisor``) with its sample sizes. No third-party model code: the decision rule
reads the table directly, which keeps the failure path light and every decision explainable.

Next to the follow-ups, the table's ``clears``: for every failure, how long until the job type
(any job of it) completed again while fresh jobs kept failing with the same error (``CLEARS``),
as quantiles per (job type, error type) and pooled, with whether the error comes in runs
(``RUNS``). They say how long an outage or a rate-limit window lasts when the fixed backoff's
retries never waited that long.

The holdout check: the table trained on the older 80% of the window is replayed against the
newest 20% (by failure time; its clear times and runs as known at the first held-out failure):
for each held-out follow-up the advisor's decision is compared
with what happened, reported as ``metrics.holdout`` (how many follow-ups the advisor would
have skipped and how many of those failed anyway).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson

from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import ValidationFailed
from jobline.shared.retry import adaptive

DEFAULT_DAYS = 30

# One row per failure that had a follow-up; `failed_at` orders the time split.
PAIRS = """
SELECT j.job_type, coalesce(a.error_type, 'error') AS etype, a.finished_at AS failed_at,
       (nx.outcome = 'completed') AS ok,
       greatest(0, extract(epoch FROM nx.started_at - a.finished_at) * 1000)::bigint AS gap_ms
  FROM job_attempts a
  JOIN jobs j ON j.id = a.job_id
  JOIN LATERAL (SELECT n.outcome, n.started_at FROM job_attempts n
                 WHERE n.job_id = a.job_id AND n.lease_token > a.lease_token
                   AND n.outcome <> 'released'
                 ORDER BY n.lease_token LIMIT 1) nx ON true
 WHERE a.finished_at >= $1 AND a.finished_at < $2
   AND a.outcome IN ('failed', 'timeout', 'lease_expired')
 ORDER BY a.finished_at
"""

# One row per failure in the window: how long the error type went on for the job type as a
# whole, which the follow-ups of one job cannot show when the fixed backoff never waited that
# long. The evidence is other jobs' first attempts: while fresh jobs of the type keep failing
# with the same error, it has not cleared, and it is taken to last until the type's next
# completed attempt. No later fresh failure before that completion: nothing says the error
# outlasted this failure (0: a job's own error, or a quiet type whose next job simply came
# late). No completion before the window's end: unknown (null), unless nothing says the
# error lasted (0).
# Every failure between two completions shares the next one, so one pass in time order read
# backwards (a running minimum of completions) and one partition by that completion do it.
CLEARS = """
WITH ev AS (
  SELECT j.job_type, a.started_at AS t, NULL::text AS etype, a.started_at AS ok_at,
         false AS fresh
    FROM job_attempts a JOIN jobs j ON j.id = a.job_id
   WHERE a.outcome = 'completed' AND a.started_at >= $1
  UNION ALL
  SELECT j.job_type, a.finished_at, coalesce(a.error_type, 'error'), NULL, a.attempt = 1
    FROM job_attempts a JOIN jobs j ON j.id = a.job_id
   WHERE a.finished_at >= $1 AND a.finished_at < $2
     AND a.outcome IN ('failed', 'timeout', 'lease_expired')
), nx AS (
  SELECT job_type, etype, t, fresh,
         min(ok_at) OVER (PARTITION BY job_type ORDER BY t DESC, etype NULLS FIRST
                          ROWS UNBOUNDED PRECEDING) AS next_ok
    FROM ev
), g AS (
  SELECT job_type, etype, t, next_ok,
         max(t) FILTER (WHERE fresh) OVER (PARTITION BY job_type, etype, next_ok) AS last_fresh
    FROM nx WHERE etype IS NOT NULL
)
SELECT job_type, etype, t AS failed_at,
       CASE WHEN last_fresh IS NULL OR last_fresh <= t THEN 0
            WHEN next_ok IS NULL THEN NULL
            ELSE (extract(epoch FROM next_ok - t) * 1000)::bigint END AS clear_ms
  FROM g
"""

# Whether an error type comes in runs for a job type (the world's error: an outage, a rate
# limit) or strikes jobs independently (a job's own error): per (job type, error type) of the
# jobs' first attempts in time order, how many were followed by another first attempt of the
# type (n) and how often that one failed with the same error too (same); '' stands for a
# completed attempt, so the counts of a type sum to its first attempts.
RUNS = """
WITH f AS (
  SELECT j.job_type, a.started_at,
         CASE WHEN a.outcome = 'completed' THEN '' ELSE coalesce(a.error_type, 'error') END
           AS etype
    FROM job_attempts a JOIN jobs j ON j.id = a.job_id
   WHERE a.attempt = 1 AND a.started_at >= $1 AND a.started_at < $2
     AND a.outcome IN ('completed', 'failed', 'timeout', 'lease_expired')
), s AS (
  SELECT job_type, etype, lead(etype) OVER (PARTITION BY job_type ORDER BY started_at) AS nxt
    FROM f
)
SELECT job_type, etype, count(*) AS n, count(*) FILTER (WHERE nxt = etype) AS same
  FROM s WHERE nxt IS NOT NULL GROUP BY 1, 2
"""

SAVE = """
INSERT INTO ai_models (kind, version, trained_at, metrics, meta, model)
SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5 FROM ai_models WHERE kind = $1
RETURNING version
"""


def _bucket(gap_ms: int) -> int:
    i = 0
    for k, lo in enumerate(adaptive.GAP_BUCKETS_MS):
        if gap_ms >= lo:
            i = k
    return i


def table(pairs: list[tuple[str, str, bool, int]]) -> dict[str, Any]:
    """The recovery table of (job type, error type, next attempt ok, gap ms) observations."""
    nb = len(adaptive.GAP_BUCKETS_MS)
    acc: dict[tuple[str | None, str], dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "ok": 0, "buckets": [[0, 0, 0] for _ in range(nb)], "maxGapMs": 0})
    for job_type, etype, ok, gap in pairs:
        for key in ((job_type, etype), (None, etype)):
            s = acc[key]
            s["n"] += 1
            s["ok"] += 1 if ok else 0
            b = s["buckets"][_bucket(gap)]
            b[0] += 1
            b[1] += 1 if ok else 0
            b[2] += gap
            s["maxGapMs"] = max(s["maxGapMs"], gap)
    return {"bucketsMs": list(adaptive.GAP_BUCKETS_MS),
            "stats": [{"jobType": k[0], "errorType": k[1], **v} for k, v in acc.items()]}


def clear_table(clears: list[tuple[str, str, int | None]],
                runs: Sequence[tuple[str, str, int, int]] = ()) -> list[dict[str, Any]]:
    """Clear-time quantiles of (job type, error type, ms until the type next completed, or None
    when it did not in the window), per (job type, error type) and pooled per error type:
    ``q[k]`` is the ``(k + 1) / CLEAR_STEPS`` quantile, None where it lies past the window.
    ``runs`` (job type, error type or '' for a success, n, same; see ``RUNS``) adds whether the
    error comes in runs: ``fresh`` first attempts with it followed by another, ``freshSame`` of
    them followed by the same error, ``freshShare`` its share of the first attempts."""
    total: dict[str, int] = defaultdict(int)
    for rt, _et, n, _same in runs:
        total[rt] += n
    run_acc: dict[tuple[str | None, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for rt, ret, n, same in runs:
        if not ret:
            continue
        for key in ((rt, ret), (None, ret)):
            r = run_acc[key]
            r[0] += n
            r[1] += same
            r[2] += total[rt]  # pooled: the first attempts of the types the error struck
    acc: dict[tuple[str | None, str], list[int | None]] = defaultdict(list)
    for job_type, etype, ms in clears:
        acc[(job_type, etype)].append(ms)
        acc[(None, etype)].append(ms)
    out = []
    for (jt, et), v in acc.items():
        known = sorted(max(0, x) for x in v if x is not None)
        n = len(v)
        q: list[int | None] = []
        for k in range(adaptive.CLEAR_STEPS):
            i = math.ceil(n * (k + 1) / adaptive.CLEAR_STEPS) - 1
            q.append(known[i] if i < len(known) else None)
        fresh, same, of = run_acc.get((jt, et), (0, 0, 0))
        out.append({"jobType": jt, "errorType": et, "n": n,
                    "censored": n - len(known), "q": q, "fresh": fresh, "freshSame": same,
                    "freshShare": fresh / of if of else 0.0})
    return out


def replay(model: adaptive.Model, pairs: list[tuple[str, str, bool, int]]) -> dict[str, Any]:
    """What the advisor would have done with held-out follow-ups: a skipped retry that failed
    anyway is a saved waste; one that succeeded is a lost success."""
    skipped = skipped_failed = 0
    for job_type, etype, ok, _gap in pairs:
        d = adaptive.decide(model, job_type, etype, 1_000, 3_600_000, None)
        if not d.retry:
            skipped += 1
            skipped_failed += 0 if ok else 1
    return {"followUps": len(pairs), "failedAgain": sum(1 for p in pairs if not p[2]),
            "wouldSkip": skipped, "wouldSkipAndFailed": skipped_failed}


async def train(deps: Deps, *, days: int = DEFAULT_DAYS) -> dict[str, Any]:
    """Aggregate the last ``days`` of follow-ups into a new ``retry_advisor`` version."""
    if not 1 <= days <= 400:
        raise ValidationFailed("days", "must be 1-400")
    to_ms = deps.clock.now_ms()
    rows = await deps.pool.fetch(PAIRS, to_dt(to_ms - days * 86_400_000), to_dt(to_ms))
    pairs = [(r["job_type"], r["etype"], bool(r["ok"]), int(r["gap_ms"])) for r in rows]
    crows = await deps.pool.fetch(CLEARS, to_dt(to_ms - days * 86_400_000), to_dt(to_ms))
    clears = [(r["job_type"], r["etype"],
               int(r["clear_ms"]) if r["clear_ms"] is not None else None) for r in crows]
    async def runs_until(end_ms: int) -> list[tuple[str, str, int, int]]:
        return [(r["job_type"], r["etype"], int(r["n"]), int(r["same"])) for r in await
                deps.pool.fetch(RUNS, to_dt(to_ms - days * 86_400_000), to_dt(end_ms))]

    runs = await runs_until(to_ms)
    cut = int(len(pairs) * 0.8)
    # the older table knows only what was known at the first held-out failure: earlier
    # failures, and a clear time reaching past that moment is not known yet (censored)
    older_clears, older_runs = clears, runs
    if cut < len(rows):
        cut_ms = from_dt(rows[cut]["failed_at"])
        older_clears = [
            (jt, et, ms if ms is not None and from_dt(r["failed_at"]) + ms < cut_ms else None)
            for (jt, et, ms), r in zip(clears, crows, strict=True)
            if from_dt(r["failed_at"]) < cut_ms]
        older_runs = await runs_until(cut_ms)
    older = adaptive.Model.parse(None, orjson.dumps(
        {**table(pairs[:cut]), "clears": clear_table(older_clears, older_runs)}).decode())
    model = {**table(pairs), "clears": clear_table(clears, runs)}
    metrics = {"followUps": len(pairs), "errorTypes": len({p[1] for p in pairs}),
               "jobTypes": len({p[0] for p in pairs}), "holdout": replay(older, pairs[cut:]),
               "window": {"from": to_dt(to_ms - days * 86_400_000).isoformat(),
                          "to": to_dt(to_ms).isoformat()}}
    trained_at = to_dt(to_ms)
    version = await deps.pool.fetchval(
        SAVE, adaptive.KIND, trained_at, orjson.dumps(metrics).decode(),
        orjson.dumps({"minPairs": adaptive.MIN_PAIRS, "minBucket": adaptive.MIN_BUCKET}).decode(),
        orjson.dumps(model).decode())
    adaptive.forget(deps)
    return {"kind": adaptive.KIND, "version": version, "trainedAt": trained_at.isoformat(),
            **metrics}
