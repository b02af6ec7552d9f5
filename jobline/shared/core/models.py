"""Domain vocabulary: job statuses, the legal transitions between them, and the records that
cross the core's boundary.

The state machine (see ``docs/state-machine.md``)::

    waiting (dependencies / batch) -> pending <-> scheduled -> processing -> completed | scheduled/pending (retry)
                                                      | dead_letter
    scheduled -> processing (claimed when due)
    any non-terminal -> cancelled (a running job: cooperatively, once its attempt ends);
    dead_letter (and legacy failed) -> pending (manual retry)

Every terminal failure ends in ``dead_letter``: retries exhausted *and* ``Unrecoverable`` /
non-retryable error types. One place for an operator to look, filter by error type and retry
from: an "unrecoverable" verdict is the handler's view of the input at the time, and a fixed bug
or corrected data makes it worth retrying. ``failed`` has no incoming edge any more; it stays a
valid status (schema CHECK, manual retry) only for rows written before the dead-letter queue.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.errors import ValidationFailed


class Status(StrEnum):
    WAITING = "waiting"  # blocked on dependencies
    PENDING = "pending"  # ready to run, in the Redis ready queue
    SCHEDULED = "scheduled"  # due later (delayed submit or retry backoff)
    PROCESSING = "processing"  # leased by a worker
    COMPLETED = "completed"
    #: Legacy terminal failure (before the dead-letter queue); nothing enters it now.
    FAILED = "failed"
    #: Out of attempts or unrecoverable: parked for an operator (``jobline.shared.retry.dlq``).
    DEAD_LETTER = "dead_letter"
    CANCELLED = "cancelled"


TERMINAL: frozenset[Status] = frozenset(
    {Status.COMPLETED, Status.FAILED, Status.DEAD_LETTER, Status.CANCELLED}
)
CANCELLABLE: frozenset[Status] = frozenset({Status.WAITING, Status.PENDING, Status.SCHEDULED})
RETRYABLE_BY_HAND: frozenset[Status] = frozenset({Status.FAILED, Status.DEAD_LETTER})

#: Every legal edge of the state machine, as (from, to). Tests walk this table both ways.
TRANSITIONS: frozenset[tuple[Status, Status]] = frozenset(
    {
        # the last dependency completed (or the batch of an onComplete job finished)
        (Status.WAITING, Status.PENDING),
        (Status.WAITING, Status.SCHEDULED),
        # cancel, or a dependency ended dead_letter/failed/cancelled (transitively)
        (Status.WAITING, Status.CANCELLED),
        (Status.PENDING, Status.PROCESSING),
        (Status.PENDING, Status.CANCELLED),
        (Status.SCHEDULED, Status.PENDING),
        # a due scheduled job is claimed directly: Redis promotes it, Postgres never needs the
        # intermediate write
        (Status.SCHEDULED, Status.PROCESSING),
        (Status.SCHEDULED, Status.CANCELLED),
        (Status.PROCESSING, Status.COMPLETED),
        (Status.PROCESSING, Status.SCHEDULED),
        (Status.PROCESSING, Status.PENDING),
        (Status.PROCESSING, Status.DEAD_LETTER),
        # a running job whose cancel was requested (or whose handler raised Cancelled) ends
        # cancelled when its attempt ends, whatever the outcome but a plain success
        (Status.PROCESSING, Status.CANCELLED),
        (Status.FAILED, Status.PENDING),
        (Status.DEAD_LETTER, Status.PENDING),
    }
)

#: Most ids one request may name; a larger selection is expressed as a filter.
MAX_IDS = 100_000


@dataclass(frozen=True, slots=True)
class DlqFilter:
    """Which jobs a DLQ operation or a manual retry applies to; None fields match anything.

    ``from_ms``/``to_ms`` bound when the job was dead-lettered (``completed_at``), as [from, to).
    """

    ids: tuple[uuid.UUID, ...] | None = None
    queue: str | None = None
    job_type: str | None = None
    error_type: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None

    def args(self) -> list[Any]:
        if self.ids is not None and len(self.ids) > MAX_IDS:
            raise ValidationFailed("ids", f"at most {MAX_IDS} ids per request")
        if self.from_ms is not None and self.to_ms is not None and self.from_ms > self.to_ms:
            raise ValidationFailed("to", "must not be before from")
        return [list(self.ids) if self.ids is not None else None, self.queue, self.job_type,
                self.error_type, to_dt(self.from_ms) if self.from_ms is not None else None,
                to_dt(self.to_ms) if self.to_ms is not None else None]


PRIORITY_MIN = 0
PRIORITY_MAX = 10
PRIORITY_DEFAULT = 5


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A validated submission. ``scheduled_for_ms`` None means "now"."""

    queue: str
    job_type: str
    payload: dict[str, Any]
    priority: int = PRIORITY_DEFAULT
    max_attempts: int | None = None
    scheduled_for_ms: int | None = None
    timeout_ms: int | None = None
    idempotency_key: str | None = None
    #: Start no earlier than this many ms after submission, measured on the same clock reading
    #: that becomes ``created_at`` (so the gap is exact). Ignored when ``scheduled_for_ms`` is set.
    delay_ms: int | None = None
    #: Job ids, or (in ``submit_many``) the index of an earlier spec of the same call.
    depends_on: tuple[uuid.UUID | int, ...] = ()
    batch_id: uuid.UUID | None = None
    #: Per-submission retry policy override: {"baseMs", "factor", "capMs", "jitter"}.
    backoff: dict[str, Any] | None = None
    #: Per-submission non-retryable error types; None defers to the job type's policy.
    non_retryable: tuple[str, ...] | None = None
    #: The handler decorator's max_attempts, known to an in-process submitter: used only when
    #: neither ``max_attempts`` nor the stored per-type policy sets one.
    handler_max_attempts: int | None = None
    #: False when the submission did not name a queue: the job-type registry's queue then
    #: applies, and ``queue`` is only the fallback for a type nobody registered (the
    #: submitter's own handler's queue, else ``default``). Resolved in SQL (docs/job-types.md).
    queue_given: bool = True
    #: The submitter's own handler's timeout: used only when neither ``timeout_ms`` nor the
    #: job-type registry sets one.
    handler_timeout_ms: int | None = None

    #: Seconds the result is kept once the job completes (None: the handler's, else the global
    #: default; 0: kept). See ``jobline.shared.core.results``.
    result_ttl_s: int | None = None


@dataclass(frozen=True, slots=True)
class Submitted:
    id: uuid.UUID
    status: Status
    queue: str
    seq: int
    duplicate: bool = False


@dataclass(slots=True)
class ClaimedJob:
    """A job leased to a worker. ``token`` fences every later write for this attempt."""

    id: uuid.UUID
    queue: str
    job_type: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    token: int
    timeout_ms: int | None
    lease_expires_ms: int
    started_ms: int
    #: Per-submission retry policy override, if any.
    backoff: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended, reported by a worker."""

    id: uuid.UUID
    token: int
    ok: bool
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    #: Retry not before this many ms from now (None = use the backoff policy).
    retry_after_ms: int | None = None
    #: False: the attempt does not count against max_attempts (snooze / rate limit).
    burn_attempt: bool = True
    #: True: never retry (Unrecoverable, serialization error). Non-retryable error types are
    #: decided by the core from the job's policy, not here.
    final: bool = False
    finished_ms: int | None = None
    #: True: the attempt ended because of a cancel (the handler raised ``Cancelled`` or returned
    #: after observing ``ctx.cancelled``): the job ends ``cancelled``.
    cancelled: bool = False
    #: The handler's result TTL in seconds (``@job(result_ttl=...)``), used when the job has
    #: none of its own; None defers to the global default, 0 keeps the result.
    result_ttl_s: int | None = None


@dataclass(slots=True)
class Job:
    """A job as stored, for reads (API, client)."""

    id: uuid.UUID
    queue: str
    job_type: str
    payload: dict[str, Any]
    status: Status
    priority: int
    attempts: int
    max_attempts: int
    result: Any
    error: str | None
    error_type: str | None
    created_ms: int
    started_ms: int | None
    completed_ms: int | None
    scheduled_for_ms: int
    timeout_ms: int | None
    idempotency_key: str | None
    worker_id: str | None
    depends_on: list[uuid.UUID] = field(default_factory=list)
    batch_id: uuid.UUID | None = None
    seq: int = 0
    attempts_history: list[Attempt] = field(default_factory=list)
    #: The submission's result TTL in seconds (None: not set).
    result_ttl_s: int | None = None
    #: When the result will be removed (None: kept, or no result yet).
    result_expires_ms: int | None = None
    #: True once the result was removed by expiry (``result`` is then None).
    result_expired: bool = False
    #: The latest execution's ``ctx.progress``/``ctx.log`` reports (only on single-job reads).
    progress: Any = None


@dataclass(slots=True)
class Attempt:
    attempt: int
    worker_id: str | None
    started_ms: int
    finished_ms: int
    outcome: str  # completed | failed | timeout | lease_expired | released
    error_type: str | None
    error: str | None
    duration_ms: int
    #: The retry advisor's decision for this failure (adaptive jobs only; JSON object
    #: ``{retry, delayMs, successProbability, reason}``).
    retry_decision: dict[str, Any] | None = None
