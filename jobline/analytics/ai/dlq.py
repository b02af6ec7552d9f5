"""DLQ root causes: dead letters grouped by error template, each group with the evidence for
whether retrying it can help and what to change (issue 17, item 5).

Reads only: the newest ``limit`` dead letters matching the filter (``jobs``' ``status``-leading
index, newest first) and, for the error types they show, how jobs that hit the same error type
in the last ``RECOVERY_DAYS`` fared (``job_attempts`` pruned to that window by the UUIDv7 key).
"Retry this group" recomputes the groups over the same selection and retries exactly the group's
members through the DLQ's one set-based transition (:func:`jobline.shared.retry.dlq.retry_dead_letters`).
"""

from __future__ import annotations

import re
import statistics
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from jobline.analytics.ai import narrate
from jobline.analytics.ai.templates import Cluster, group
from jobline.shared.core.models import MAX_IDS, DlqFilter
from jobline.shared.platform.clock import from_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import NotFound
from jobline.shared.platform.ids import uuid7_floor
from jobline.shared.retry import dlq

DEFAULT_LIMIT = 10_000
MAX_LIMIT = 50_000
RECOVERY_DAYS = 7
#: Enough jobs with an error type to trust its recovery rate over the message's wording.
MIN_EVIDENCE = 10
#: Recovery rate at or above which a retry is worth it.
RETRYABLE_RATE = 0.2
SAMPLE_IDS = 5

DEAD_LETTERS = """
SELECT id, queue_name, job_type, error_type, coalesce(error, '') AS error, completed_at,
       attempts, timeout_ms
  FROM jobs
 WHERE status = 'dead_letter' AND ($1::text IS NULL OR queue_name = $1)
   AND ($2::text IS NULL OR job_type = $2)
 ORDER BY id DESC
 LIMIT $3
"""

# Of the jobs that had a failed attempt with an error type since $1, how many completed later.
RECOVERY = """
WITH f AS (
    SELECT DISTINCT job_id, error_type FROM job_attempts
     WHERE job_id >= $1 AND error_type = ANY($2::text[])
       AND outcome IN ('failed', 'retry', 'timeout', 'lease_expired')
     LIMIT 200000)
SELECT f.error_type, count(*) AS jobs, count(*) FILTER (WHERE j.status = 'completed') AS recovered
  FROM f JOIN jobs j ON j.id = f.job_id
 GROUP BY f.error_type
"""

LAST_ATTEMPTS = """
SELECT DISTINCT ON (job_id) job_id, duration_ms FROM job_attempts
 WHERE job_id = ANY($1::uuid[]) ORDER BY job_id, attempt DESC
"""

# Wording of errors that retrying cannot fix (input and permission problems) and of transient
# ones; used only when the history holds too few jobs with the error type to measure it.
_PERMANENT = re.compile(r"valid|schema|not found|no such|missing|required|forbidden|permission|"
                        r"unauthori[sz]ed|denied|\b4(0[0-7]|09|1\d|2[0-8])\b|malformed|"
                        r"unsupported|KeyError|ValueError|TypeError", re.I)
_TRANSIENT = re.compile(r"time ?out|timed out|connection|reset|refused|unavailable|temporar|"
                        r"rate.?limit|too many|throttl|\b429\b|\b5\d\d\b|busy|deadlock|retry",
                        re.I)


@dataclass(frozen=True, slots=True)
class Row:
    id: uuid.UUID
    queue: str
    job_type: str
    error_type: str | None
    error: str
    dead_at_ms: int
    attempts: int
    timeout_ms: int | None


async def _rows(deps: Deps, queue: str | None, job_type: str | None, limit: int) -> list[Row]:
    rows = await deps.pool.fetch(DEAD_LETTERS, queue, job_type, limit)
    return [Row(r["id"], r["queue_name"], r["job_type"], r["error_type"], r["error"],
                from_dt(r["completed_at"]) if r["completed_at"] is not None else 0,
                r["attempts"], r["timeout_ms"]) for r in rows]


def _groups(rows: list[Row]) -> list[Cluster[Row]]:
    return group(rows, key=lambda r: (r.error_type, r.error))


async def _recovery(deps: Deps, error_types: list[str]) -> dict[str, tuple[int, int]]:
    since = uuid7_floor(deps.clock.now_ms() - RECOVERY_DAYS * 86_400_000)
    rows = await deps.pool.fetch(RECOVERY, since, error_types)
    return {r["error_type"]: (int(r["jobs"]), int(r["recovered"])) for r in rows}


def _retryable(etype: str, text: str, evidence: tuple[int, int] | None) -> tuple[bool, str]:
    """(retryable, why) — measured recovery when there is enough of it, else the wording."""
    if evidence is not None and evidence[0] >= MIN_EVIDENCE:
        jobs, recovered = evidence
        rate = recovered / jobs
        return rate >= RETRYABLE_RATE, (
            f"{recovered:,} of {jobs:,} jobs that failed with {etype} in the last "
            f"{RECOVERY_DAYS} days succeeded on a later attempt ({rate:.0%})")
    words = f"{etype} {text}"
    if _PERMANENT.search(words) and not _TRANSIENT.search(words):
        return False, f"too little history for {etype}; its wording reads as an input error"
    return True, f"too little history for {etype}; its wording reads as a transient failure"


def _suggestion(c: Cluster[Row], retryable: bool, why: str,
                durations: dict[uuid.UUID, int]) -> str:
    top_type, top_n = Counter(r.job_type for r in c.members).most_common(1)[0]
    share = top_n / len(c.members)
    attempts = statistics.median(r.attempts for r in c.members)
    timeouts = [(durations[r.id], r.timeout_ms) for r in c.members
                if r.id in durations and r.timeout_ms]
    near = [d for d, t in timeouts if d >= 0.9 * t]
    if timeouts and len(near) >= 0.5 * len(timeouts):
        ds = sorted(d for d, _ in timeouts)
        p95 = ds[min(len(ds) - 1, int(0.95 * len(ds)))]
        t = statistics.median(t for _, t in timeouts)
        return (f"{len(near):,} of {len(timeouts):,} last attempts ran into the timeout "
                f"(median timeoutMs {t:,.0f} ms): raise timeoutMs for {top_type} to about "
                f"{p95 * 1.5:,.0f} ms (p95 x 1.5) or split the job, then retry this group.")
    if not retryable:
        return (f"{why}: retrying will fail again. Fix the cause in {top_type} "
                f"({share:.0%} of this group) and add {c.error_type} to its non-retryable "
                f"errors (PUT /api/v1/retry-policies/{top_type}) so it stops using attempts.")
    return (f"{why}: these {len(c.members):,} jobs gave up after a median {attempts:g} "
            f"attempts. Retry this group; if it recurs, give {top_type} more attempts or a "
            f"longer backoff.")


async def insights(deps: Deps, *, queue: str | None = None, job_type: str | None = None,
                   limit: int = DEFAULT_LIMIT, narrated: bool = True) -> dict[str, Any]:
    """The root-cause groups of the newest ``limit`` dead letters matching the filter. With an
    LLM configured (and ``narrated``), each group's ``suggestion`` is phrased from the group's
    computed facts (template, error type, counts, job types, evidence), never its messages."""
    rows = await _rows(deps, queue, job_type, limit)
    clusters = _groups(rows)
    etypes = sorted({c.error_type for c in clusters})
    recovery = await _recovery(deps, etypes) if etypes else {}
    sample = [r.id for c in clusters for r in c.members[:200]]
    durations = {r["job_id"]: int(r["duration_ms"])
                 for r in await deps.pool.fetch(LAST_ATTEMPTS, sample)} if sample else {}
    out = []
    for c in clusters:
        retryable, why = _retryable(c.error_type, c.text, recovery.get(c.error_type))
        times = [r.dead_at_ms for r in c.members]
        out.append({
            "groupId": c.group_id, "template": c.text, "count": len(c.members),
            "jobTypes": [t for t, _ in Counter(r.job_type for r in c.members).most_common()],
            "queues": [q for q, _ in Counter(r.queue for r in c.members).most_common()],
            "errorTypes": [c.error_type],
            "firstSeenMs": min(times), "lastSeenMs": max(times),
            "sampleJobIds": [str(r.id) for r in c.members[:SAMPLE_IDS]],
            "retryable": retryable, "evidence": why,
            "suggestion": _suggestion(c, retryable, why, durations), "narrated": False,
        })
    if narrated and out:
        texts = await narrate.phrase_many(
            deps.settings, "Explain this dead-letter root cause and what to do about it.",
            [({"template": g["template"], "errorTypes": g["errorTypes"], "count": g["count"],
               "jobTypes": g["jobTypes"], "queues": g["queues"], "retryable": g["retryable"],
               "evidence": g["evidence"], "text": g["suggestion"]}, str(g["suggestion"]))
             for g in out])
        for g, (text, done) in zip(out, texts, strict=True):
            g["suggestion"], g["narrated"] = text, done
    return {"groups": out, "analyzed": len(rows), "limit": limit,
            "complete": len(rows) < limit}


async def retry_group(deps: Deps, group_id: str, *, queue: str | None = None,
                      job_type: str | None = None,
                      limit: int = DEFAULT_LIMIT) -> list[uuid.UUID]:
    """Retry exactly the members of ``group_id`` among the dead letters the same selection shows
    now (404 when no such group is there any more)."""
    for c in _groups(await _rows(deps, queue, job_type, limit)):
        if c.group_id == group_id:
            ids = tuple(r.id for r in c.members)[:MAX_IDS]
            return await dlq.retry_dead_letters(deps, DlqFilter(ids=ids))
    raise NotFound(f"no dead-letter group {group_id!r} in this selection")
