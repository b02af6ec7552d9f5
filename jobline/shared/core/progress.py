"""Progress and log lines of running jobs (``ctx.progress`` / ``ctx.log``): storage and live news.

Invariants:
  * bounded: per execution (job id + lease token) at most :data:`MAX_LOG_LINES` lines are kept,
    the newest; each line is cut to :data:`MAX_LINE_CHARS` and masked like errors are
    (``jobline.shared.security.masking.mask_text``) before it is stored;
  * fenced: a report is written only while the reporting execution still holds the job's lease
    (same token, status ``processing``), so a worker that lost its job cannot scribble on the
    next attempt's row;
  * cheap: callers hand a batch of coalesced reports (one per job since the last flush) and it
    is one statement, whatever its size; jobs that never report cost nothing.

Live news: after a write, one PUBLISH per job on ``{prefix}:progress:{job_id}`` (pipelined). It
carries no state: a listener re-reads the row (:func:`get_progress`), so a lost message only
delays the next update. Redis pub/sub rather than the event bus: progress is a view, not an
event consumers should see durably, and it may be reported many times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from jobline.shared.dispatch.mirror import after_commit
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.redis_client import UNAVAILABLE_ERRORS, publish_many
from jobline.shared.security.masking import mask_text

log = logging.getLogger("jobline.progress")

#: Back-off between attempts to renew a lost progress subscription (seconds).
RESUBSCRIBE_MIN_S = 0.05
RESUBSCRIBE_MAX_S = 2.0
#: Log lines kept per execution (the newest).
MAX_LOG_LINES = 100
#: Characters kept of one log line or progress message.
MAX_LINE_CHARS = 1000

# $1 ids, $2 tokens, $3 fractions (NULL: unchanged), $4 messages (NULL: unchanged), $5 the new
# lines of each as a JSON array text (ragged, so not a 2-D array), $6 lines dropped before they
# were sent, $7 now, $8 MAX_LOG_LINES. Only executions that still hold their lease are written.
RECORD_PROGRESS = """
INSERT INTO job_progress AS p (job_id, lease_token, attempt, fraction, message, logs,
                               logs_dropped, updated_at)
SELECT j.id, j.lease_token, j.attempts, u.fr, u.msg, u.lines::jsonb, u.dropped, $7
  FROM unnest($1::uuid[], $2::bigint[], $3::float8[], $4::text[], $5::text[], $6::int[])
       AS u(id, token, fr, msg, lines, dropped)
  JOIN jobs j ON j.id = u.id AND j.lease_token = u.token AND (j.status || '') = 'processing'
ON CONFLICT (job_id, lease_token) DO UPDATE
   SET fraction = coalesce(EXCLUDED.fraction, p.fraction),
       message = coalesce(EXCLUDED.message, p.message),
       logs = CASE WHEN jsonb_array_length(p.logs) + jsonb_array_length(EXCLUDED.logs) <= $8
                   THEN p.logs || EXCLUDED.logs
                   ELSE (SELECT jsonb_agg(e ORDER BY i)
                           FROM jsonb_array_elements(p.logs || EXCLUDED.logs)
                                WITH ORDINALITY AS a(e, i)
                          WHERE i > jsonb_array_length(p.logs) + jsonb_array_length(EXCLUDED.logs)
                                    - $8) END,
       logs_dropped = p.logs_dropped + EXCLUDED.logs_dropped
           + greatest(0, jsonb_array_length(p.logs) + jsonb_array_length(EXCLUDED.logs) - $8),
       updated_at = EXCLUDED.updated_at
RETURNING job_id
"""

# The latest execution's row of a job.
GET_PROGRESS = """
SELECT attempt, fraction, message, logs, logs_dropped, updated_at
  FROM job_progress WHERE job_id = $1 ORDER BY lease_token DESC LIMIT 1
"""

DELETE_PROGRESS = "DELETE FROM job_progress WHERE job_id = ANY($1::uuid[])"


@dataclass(slots=True)
class ProgressReport:
    """What one execution reported since its last flush (coalesced: the last fraction/message,
    every line up to the bound)."""

    job_id: uuid.UUID
    token: int
    fraction: float | None = None
    message: str | None = None
    #: (epoch ms, text) in order.
    lines: list[tuple[int, str]] = field(default_factory=list)
    #: Lines dropped on the reporting side because more than MAX_LOG_LINES came in one flush.
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class Progress:
    """The stored progress of a job's latest execution."""

    attempt: int
    fraction: float | None
    message: str | None
    #: (epoch ms, text), oldest first, at most MAX_LOG_LINES.
    logs: list[tuple[int, str]]
    #: Lines no longer kept (beyond the bound).
    logs_dropped: int
    updated_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "fraction": self.fraction, "message": self.message,
                "logs": [{"timeMs": t, "message": m} for t, m in self.logs],
                "logsDropped": self.logs_dropped, "updatedMs": self.updated_ms}


def channel(prefix: str, job_id: uuid.UUID) -> str:
    return f"{prefix}:progress:{job_id}"


def clip(text: str, keys: Sequence[str]) -> str:
    """A line as stored: masked, then cut (masking first, so a cut never exposes a secret's
    tail that the pattern would have matched)."""
    return (mask_text(text, keys) or "")[:MAX_LINE_CHARS]


async def record(deps: Deps, reports: Sequence[ProgressReport]) -> list[uuid.UUID]:
    """Store the reports (one statement) and announce them; returns the job ids written (a
    report of an execution that no longer holds its lease is dropped)."""
    if not reports:
        return []
    keys = deps.settings.mask_keys
    rows = await deps.pool.fetch(
        RECORD_PROGRESS, [r.job_id for r in reports], [r.token for r in reports],
        [r.fraction for r in reports],
        [clip(r.message, keys) if r.message is not None else None for r in reports],
        [orjson.dumps([{"t": t, "m": clip(m, keys)} for t, m in r.lines[-MAX_LOG_LINES:]]
                      ).decode() for r in reports],
        [r.dropped + max(0, len(r.lines) - MAX_LOG_LINES) for r in reports],
        to_dt(deps.clock.now_ms()), MAX_LOG_LINES)
    written = [r["job_id"] for r in rows]
    with after_commit("progress of %d jobs stored, not announced", len(written)):
        # one round trip: a pipeline, or on a Redis Cluster (no pipelined PUBLISH) one script
        await publish_many(deps.dispatch.r,
                           [(channel(deps.dispatch.prefix, job_id), b"1") for job_id in written])
    return written


async def get_progress(deps: Deps, job_id: uuid.UUID) -> Progress | None:
    r = await deps.pool.fetchrow(GET_PROGRESS, job_id)
    if r is None:
        return None
    logs = r["logs"]
    if isinstance(logs, str):
        logs = orjson.loads(logs)
    return Progress(attempt=r["attempt"], fraction=r["fraction"], message=r["message"],
                    logs=[(int(e["t"]), str(e["m"])) for e in logs],
                    logs_dropped=r["logs_dropped"], updated_ms=from_dt(r["updated_at"]))


async def updates(deps: Deps, job_id: uuid.UUID) -> AsyncIterator[None]:
    """Yield once subscribed, then once per progress announcement of ``job_id`` (the caller
    re-reads). Runs until the consumer stops iterating; uses a pub/sub connection of its own.

    A subscription lost after it was made (Redis restarted; on a Cluster, the node serving the
    channel's slot failed over) is renewed with back-off, and renewing yields once more: a report
    announced while nobody listened is then re-read, so none is missed for good. Redis
    unreachable at the first subscribe raises, as any Redis call does.
    """
    delay = RESUBSCRIBE_MIN_S
    first = True
    while True:
        pubsub = deps.dispatch.r.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel(deps.dispatch.prefix, job_id))
            delay = RESUBSCRIBE_MIN_S
            if not first:
                log.info("progress of job %s: subscription renewed", job_id)
            first = False
            yield None
            async for msg in pubsub.listen():
                if msg.get("type") == "message":
                    yield None
            return  # the connection closed without an error: nothing more will come
        except UNAVAILABLE_ERRORS as e:
            if first:
                raise  # unreachable from the start: the caller reports it, as before
            log.warning("progress of job %s: subscription lost (%s); renewing in %.2fs",
                        job_id, type(e).__name__, delay)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
        await asyncio.sleep(delay)  # back-off while Redis is down, not a wait for state
        delay = min(delay * 2, RESUBSCRIBE_MAX_S)
