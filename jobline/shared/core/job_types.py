"""The job-type registry (table ``job_types``, docs/job-types.md).

Workers publish the types they have handlers for, with each handler's ``@job`` settings (queue,
max attempts, timeout, backoff, non-retryable errors), when they start. A submission that omits
one of those fields gets the registered value: that precedence is resolved in SQL by the submit
statements themselves (``sql.INSERT_JOBS`` / ``sql.RESOLVE_JOB_DEFAULTS``), so REST, GraphQL, the
Python client and the Lambda handler agree without a lookup of their own.

Which workers *serve* a type is live state and is not stored here: every worker lists its types
in its heartbeat record (Redis, expiring; :mod:`jobline.shared.observe.workers`), so a type whose
workers are all gone shows up with an empty ``served_by``. A worker handed a job it has no
handler for gives the job back without spending an attempt and notes the type here
(``unhandled_at``), so a type nobody ever registered is listed too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from jobline.shared.core.jobs import translate_errors
from jobline.shared.observe.workers import list_workers
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps

#: A count of unserved waiting jobs stops at this (the figure is a warning, not an inventory,
#: and it must stay cheap to read on every scrape).
UNSERVED_COUNT_CAP = 10_000

# Last publish wins: two worker versions with different settings for one type overwrite each
# other's defaults (the latest to start is the one that counts).
PUBLISH = """
INSERT INTO job_types AS t (job_type, queue_name, max_attempts, timeout_ms, backoff,
                            non_retryable, registered_at, updated_at)
SELECT u.t, u.q, u.ma, u.tmo, u.bo::jsonb,
       CASE WHEN u.nr IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(u.nr::jsonb)) END,
       $7, $7
  FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::text[], $6::text[])
       AS u(t, q, ma, tmo, bo, nr)
ON CONFLICT (job_type) DO UPDATE
   SET queue_name = EXCLUDED.queue_name, max_attempts = EXCLUDED.max_attempts,
       timeout_ms = EXCLUDED.timeout_ms, backoff = EXCLUDED.backoff,
       non_retryable = EXCLUDED.non_retryable, registered_at = EXCLUDED.registered_at,
       updated_at = EXCLUDED.updated_at
"""

NOTE_UNHANDLED = """
INSERT INTO job_types AS t (job_type, unhandled_at, updated_at)
SELECT unnest($1::text[]), $2, $2
ON CONFLICT (job_type) DO UPDATE SET unhandled_at = EXCLUDED.unhandled_at
"""

LIST = """
SELECT job_type, queue_name, max_attempts, timeout_ms, backoff::text AS backoff, non_retryable,
       registered_at, unhandled_at, updated_at
  FROM job_types ORDER BY job_type
"""

# Waiting (pending or scheduled) jobs of the given types per queue, capped per type: a type
# nobody registered has no queue of its own, and a submission may name another queue than the
# registered one (or go to `default` before any worker registered the type), where no worker
# with the handler may listen. Only asked for types no live worker serves and types a worker
# handed back lately, which normally means none at all.
COUNT_WAITING = f"""
SELECT t.job_type, s.queue_name, count(*)::int AS n
  FROM unnest($1::text[]) AS t(job_type)
  JOIN LATERAL (
           SELECT j.queue_name FROM jobs j
            WHERE j.job_type = t.job_type AND j.status IN ('pending', 'scheduled')
            LIMIT {UNSERVED_COUNT_CAP}) s ON true
 GROUP BY t.job_type, s.queue_name
"""

#: A type handed back this recently is checked queue by queue even when a live worker serves
#: its registered queue (its jobs may wait in a queue that worker does not claim from).
RECENTLY_UNHANDLED_MS = 10 * 60 * 1000


@dataclass(frozen=True, slots=True)
class JobTypeDefaults:
    """One handler's settings as published; None = not set by the handler."""

    job_type: str
    queue: str | None = None
    max_attempts: int | None = None
    timeout_ms: int | None = None
    backoff: dict[str, Any] | None = None
    non_retryable: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"jobType": self.job_type, "queue": self.queue, "maxAttempts": self.max_attempts,
                "timeoutMs": self.timeout_ms, "backoff": self.backoff,
                "nonRetryable": list(self.non_retryable)
                if self.non_retryable is not None else None}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> JobTypeDefaults:
        nr = d.get("nonRetryable")
        return cls(str(d["jobType"]), d.get("queue"), d.get("maxAttempts"), d.get("timeoutMs"),
                   d.get("backoff"), tuple(nr) if nr is not None else None)


@dataclass(slots=True)
class JobType:
    """A registry row with who serves it right now."""

    defaults: JobTypeDefaults
    #: When a worker last published a handler for it (None: never registered).
    registered_ms: int | None
    #: When a worker last had to give a job of this type back for want of a handler.
    unhandled_ms: int | None
    #: Live workers that have a handler for it and claim from its queue.
    served_by: list[str] = field(default_factory=list)
    #: Pending + scheduled jobs of this type waiting in queues where no live worker with its
    #: handler claims (capped at ``UNSERVED_COUNT_CAP``); counted only for a type nobody
    #: serves or one handed back in the last ``RECENTLY_UNHANDLED_MS``, else 0.
    unserved_jobs: int = 0
    #: The queues those counted jobs wait in (sorted).
    unserved_queues: list[str] = field(default_factory=list)

    @property
    def served(self) -> bool:
        return bool(self.served_by)

    def to_json(self) -> dict[str, Any]:
        return {**self.defaults.to_json(), "registeredMs": self.registered_ms,
                "unhandledMs": self.unhandled_ms, "servedBy": self.served_by,
                "served": self.served, "unservedJobs": self.unserved_jobs,
                "unservedQueues": self.unserved_queues}


@translate_errors
async def publish(deps: Deps, types: Sequence[JobTypeDefaults]) -> None:
    """Record (replace) these types' registered defaults; one statement. A type named twice
    keeps its last entry (one ``ON CONFLICT DO UPDATE`` may not touch a row twice)."""
    types = list({t.job_type: t for t in types}.values())
    if not types:
        return
    await deps.pool.execute(
        PUBLISH, [t.job_type for t in types], [t.queue for t in types],
        [t.max_attempts for t in types], [t.timeout_ms for t in types],
        [orjson.dumps(t.backoff).decode() if t.backoff else None for t in types],
        [orjson.dumps(list(t.non_retryable)).decode() if t.non_retryable is not None else None
         for t in types],
        to_dt(deps.clock.now_ms()))


@translate_errors
async def note_unhandled(deps: Deps, job_types: Sequence[str]) -> None:
    """Record that a worker was handed jobs of these types and had no handler for them."""
    if job_types:
        await deps.pool.execute(NOTE_UNHANDLED, sorted(set(job_types)),
                                to_dt(deps.clock.now_ms()))


def serves(worker: Mapping[str, Any], job_type: str, queue: str | None) -> bool:
    """Whether a live worker's heartbeat record says it runs ``job_type`` from ``queue``."""
    if job_type not in (worker.get("jobTypes") or ()):
        return False
    queues = worker.get("queues") or ["*"]
    return queue is None or "*" in queues or queue in queues


@translate_errors
async def list_job_types(deps: Deps) -> list[JobType]:
    """Every registered (or seen unhandled) type, with its live workers; types no live worker
    serves carry a (capped) count of the jobs waiting for one."""
    rows = await deps.pool.fetch(LIST)
    workers = await list_workers(deps)
    out = []
    for r in rows:
        d = JobTypeDefaults(
            r["job_type"], r["queue_name"], r["max_attempts"], r["timeout_ms"],
            orjson.loads(r["backoff"]) if r["backoff"] is not None else None,
            tuple(r["non_retryable"]) if r["non_retryable"] is not None else None)
        out.append(JobType(
            d, from_dt(r["registered_at"]) if r["registered_at"] is not None else None,
            from_dt(r["unhandled_at"]) if r["unhandled_at"] is not None else None,
            sorted(str(w["id"]) for w in workers if serves(w, d.job_type, d.queue))))
    now_ms = deps.clock.now_ms()
    check = [t for t in out if not t.served or (
        t.unhandled_ms is not None and now_ms - t.unhandled_ms <= RECENTLY_UNHANDLED_MS)]
    if check:
        by_type: dict[str, JobType] = {t.defaults.job_type: t for t in check}
        for r in await deps.pool.fetch(COUNT_WAITING, list(by_type)):
            t = by_type[r["job_type"]]
            # a queue counts as unserved when no live worker has the handler AND claims from it
            if not any(serves(w, t.defaults.job_type, r["queue_name"]) for w in workers):
                t.unserved_jobs += r["n"]
                t.unserved_queues.append(r["queue_name"])
        for t in check:
            t.unserved_queues.sort()
            t.unserved_jobs = min(t.unserved_jobs, UNSERVED_COUNT_CAP)
    return out
