"""Request and response models of the REST API (camelCase on the wire), and their conversions.

Requests are validated with these models (``extra="forbid"`` so a misspelt field is rejected by
name, strict types so ``"5"`` is not a priority); the bounds repeat the core's so they appear in
the OpenAPI document, while :func:`jobline.shared.core.validation.check_spec` stays the authority.

Responses are built by the ``*_json`` functions below as plain dicts (one orjson call per
response, no model round trip); the response models exist to describe them in the OpenAPI
document, and the tests validate real responses against them so the two cannot drift.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)
from pydantic.alias_generators import to_camel

# Request models shared with the GraphQL shell live in the core.
from jobline.shared.core.inputs import (
    JOB_TYPE_PATTERN,
    NO_NUL_PATTERN,
    QUEUE_PATTERN,
    InputModel,
    SubmitJobIn,
    check_no_nul,
)
from jobline.shared.core.jobs import SubmitResult
from jobline.shared.core.models import (
    Attempt,
    Job,
    Status,
)
from jobline.shared.dispatch.queue_controls import MAX_IN_FLIGHT_LIMIT
from jobline.shared.dispatch.redis_dispatch import QueueControls
from jobline.shared.platform.clock import from_dt
from jobline.shared.platform.errors import ValidationFailed
from jobline.shared.retry.dlq import MAX_IDS as DLQ_MAX_IDS
from jobline.shared.retry.dlq import DlqFilter
from jobline.shared.security.masking import DEFAULT_MASK_KEYS, mask, mask_text

StatusName = Literal["waiting", "pending", "scheduled", "processing", "completed", "failed",
                     "dead_letter", "cancelled"]

_In = InputModel
_check_no_nul = check_no_nul


class _Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


# --- requests ----------------------------------------------------------------------------------


class BulkSubmitIn(_In):
    """``POST /api/v1/jobs/bulk``: all items are validated before any is stored."""

    jobs: Annotated[list[SubmitJobIn], Field(min_length=1)]


class ListJobsQuery(BaseModel):
    """Query string of ``GET /api/v1/jobs`` (lax types: everything arrives as a string)."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)

    queue: Annotated[str, Field(max_length=64)] | None = None
    status: StatusName | None = None
    job_type: Annotated[str, Field(max_length=128)] | None = None
    #: Offset paging for the first pages; use ``cursor`` to go deep.
    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    #: Upper bound is ``settings.max_page_size``, checked by the endpoint.
    page_size: Annotated[int, Field(ge=1)] = 50
    #: ``nextCursor`` of the previous page.
    cursor: uuid.UUID | None = None

    @field_validator("queue", "job_type")
    @classmethod
    def _no_nul(cls, v: str | None) -> str | None:
        if v is not None and "\x00" in v:
            raise ValueError("must not contain NUL")
        return v


class ConcurrencyIn(_In):
    """``PUT /api/v1/queues/{name}/concurrency``: jobs of the queue leased at once across all
    workers; ``null`` removes the cap. Required, so an empty body is not read as "no cap"."""

    max_in_flight: Annotated[int, Field(ge=0, le=MAX_IN_FLIGHT_LIMIT)] | None


class DlqFilterIn(_In):
    """Selects dead-lettered jobs; every field is optional and an absent one matches anything.
    ``from``/``to`` bound when the job was dead-lettered, as [from, to)."""

    queue: Annotated[str, Field(pattern=QUEUE_PATTERN)] | None = None
    job_type: Annotated[str, Field(pattern=JOB_TYPE_PATTERN)] | None = None
    error_type: Annotated[str, Field(min_length=1, max_length=255,
                                     pattern=NO_NUL_PATTERN)] | None = None
    from_: Annotated[AwareDatetime | None, Field(strict=False, alias="from")] = None
    to: Annotated[AwareDatetime, Field(strict=False)] | None = None

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _iso_string_only(cls, v: Any) -> Any:
        # As for scheduledFor: a bare number would be read as a Unix timestamp (s or ms?).
        if v is not None and not isinstance(v, str):
            raise ValueError("must be an ISO 8601 date-time string with a timezone")
        return v

    def to_filter(self, ids: tuple[uuid.UUID, ...] | None = None) -> DlqFilter:
        return DlqFilter(ids=ids, queue=self.queue, job_type=self.job_type,
                         error_type=self.error_type,
                         from_ms=from_dt(self.from_) if self.from_ is not None else None,
                         to_ms=from_dt(self.to) if self.to is not None else None)


class DlqSelectIn(_In):
    """Body of bulk retry/delete: exactly one of ``ids`` or ``filter`` (``{}`` = every
    dead-lettered job, spelled out on purpose)."""

    ids: Annotated[list[Annotated[uuid.UUID, Field(strict=False)]],
                   Field(min_length=1, max_length=DLQ_MAX_IDS)] | None = None
    filter: DlqFilterIn | None = None

    def to_filter(self) -> DlqFilter:
        if (self.ids is None) == (self.filter is None):
            raise ValidationFailed("ids", "give exactly one of ids or filter")
        if self.ids is not None:
            return DlqFilter(ids=tuple(self.ids))
        assert self.filter is not None
        return self.filter.to_filter()


class DlqQuery(BaseModel):
    """Query string of ``GET /api/v1/admin/dlq`` and ``dlq.csv`` (lax: all strings)."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)

    queue: Annotated[str, Field(pattern=QUEUE_PATTERN)] | None = None
    job_type: Annotated[str, Field(pattern=JOB_TYPE_PATTERN)] | None = None
    error_type: Annotated[str, Field(min_length=1, max_length=255,
                                     pattern=NO_NUL_PATTERN)] | None = None
    from_: Annotated[AwareDatetime | None, Field(alias="from")] = None
    to: AwareDatetime | None = None
    cursor: uuid.UUID | None = None
    #: Upper bound is ``settings.max_page_size``, checked by the endpoint.
    page_size: Annotated[int, Field(ge=1)] = 50

    def to_filter(self) -> DlqFilter:
        return DlqFilter(queue=self.queue, job_type=self.job_type, error_type=self.error_type,
                         from_ms=from_dt(self.from_) if self.from_ is not None else None,
                         to_ms=from_dt(self.to) if self.to is not None else None)


# --- responses ---------------------------------------------------------------------------------


class SubmittedOut(_Out):
    job_id: uuid.UUID
    status: StatusName
    #: The queue the job went to (the job type's registered queue when the request named none).
    queue: str
    #: 1-based position in the ready queue; null when delayed or a duplicate.
    queue_position: int | None
    duplicate: bool = False


class BulkSubmittedOut(_Out):
    jobs: list[SubmittedOut]


class TransitionOut(_Out):
    job_id: uuid.UUID
    status: StatusName


class CancelRequestedOut(_Out):
    """``DELETE`` of a running job: the request is recorded and the handler signalled; the job
    ends ``cancelled`` when its handler stops (docs/state-machine.md)."""

    job_id: uuid.UUID
    status: Literal["processing"]
    cancel_requested: Literal[True]


class RetryDecisionOut(_Out):
    """The retry advisor's decision for a failed attempt of an adaptive job."""

    retry: bool
    delay_ms: int
    success_probability: float | None
    reason: str


class AttemptOut(_Out):
    attempt: int
    worker_id: str | None
    started_at: datetime
    finished_at: datetime
    outcome: str
    error_type: str | None
    error: str | None
    duration_ms: int
    retry_decision: RetryDecisionOut | None = None


class JobSummaryOut(_Out):
    id: uuid.UUID
    queue: str
    job_type: str
    payload: dict[str, Any]
    status: StatusName
    priority: int
    attempts: int
    max_attempts: int
    result: Any = None
    error: str | None
    error_type: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    scheduled_for: datetime
    timeout_ms: int | None
    idempotency_key: str | None
    worker_id: str | None
    batch_id: uuid.UUID | None = None
    #: The submission's result TTL in seconds (null: the job type's, else the server default).
    result_ttl: int | None = None
    #: When the result will be removed (null: kept, or not completed).
    result_expires_at: datetime | None = None
    #: True once the result was removed by expiry (``result`` is then null).
    result_expired: bool = False


class LogLineOut(_Out):
    time_ms: int
    message: str


class ProgressOut(_Out):
    """What the latest attempt reported with ``ctx.progress``/``ctx.log`` (last 100 lines)."""

    attempt: int
    fraction: float | None
    message: str | None
    logs: list[LogLineOut]
    #: Lines reported but no longer kept (beyond the last 100).
    logs_dropped: int
    updated_ms: int


class JobOut(JobSummaryOut):
    attempt_history: list[AttemptOut]
    #: The jobs this one waits for.
    depends_on: list[uuid.UUID] = Field(default_factory=list)
    #: Progress and log lines of the latest attempt; null if it reported none.
    progress: ProgressOut | None = None


class PurgedOut(_Out):
    queue: str
    #: Jobs cancelled by the purge.
    cancelled: int


class JobListOut(_Out):
    jobs: list[JobSummaryOut]
    page: int
    page_size: int
    total: int | None
    #: Pass as ``cursor`` to fetch the next page (keyset paging); null on the last page.
    next_cursor: str | None


class QueueOut(_Out):
    name: str
    pending: int
    scheduled: int
    waiting: int
    processing: int
    completed: int
    failed: int
    dead_letter: int
    cancelled: int
    ready: int
    delayed: int
    leased: int
    paused: bool
    max_in_flight: int | None
    #: ``{limit, windowMs}``, or null without a rate limit.
    rate_limit: dict[str, int] | None = None


class DlqListOut(_Out):
    jobs: list[JobSummaryOut]
    page_size: int
    #: Pass as ``cursor`` for the next page; null on the last page.
    next_cursor: str | None


class DlqBulkOut(_Out):
    #: How many jobs the operation applied to.
    count: int
    job_ids: list[uuid.UUID]


class QueueControlsOut(_Out):
    name: str
    paused: bool
    max_in_flight: int | None


class QueuesOut(_Out):
    queues: list[QueueOut]


class HealthOut(_Out):
    status: Literal["ok", "unavailable"]
    postgres: str | None = None
    redis: str | None = None


class FieldError(_Out):
    field: str
    message: str


class ErrorBody(_Out):
    """``field``/``message``: the (first) failure; ``errors``: every failed field of a
    validation error (400/413/415/422), the first one included."""

    code: str
    message: str
    field: str | None = None
    errors: list[FieldError] | None = None


class ErrorOut(_Out):
    error: ErrorBody


# --- serialisation -----------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_ms(ms: int | None) -> str | None:
    """``2026-01-01T00:00:00.000Z``; integer arithmetic, so no float rounding of the ms."""
    if ms is None:
        return None
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def submitted_json(r: SubmitResult) -> dict[str, Any]:
    s = r.submitted
    return {"jobId": str(s.id), "status": s.status.value, "queue": s.queue,
            "queuePosition": None if s.duplicate else r.queue_position,
            "duplicate": s.duplicate}


def attempt_json(a: Attempt) -> dict[str, Any]:
    return {"attempt": a.attempt, "workerId": a.worker_id, "startedAt": iso_ms(a.started_ms),
            "finishedAt": iso_ms(a.finished_ms), "outcome": a.outcome, "errorType": a.error_type,
            "error": a.error, "durationMs": a.duration_ms, "retryDecision": a.retry_decision}


def job_json(job: Job, *, history: bool = True,
             mask_keys: Sequence[str] = DEFAULT_MASK_KEYS) -> dict[str, Any]:
    """A job as shown to people: payload and result have secrets masked (``mask_keys``)."""
    out: dict[str, Any] = {
        "id": str(job.id), "queue": job.queue, "jobType": job.job_type,
        "payload": mask(job.payload, mask_keys),
        "status": job.status.value, "priority": job.priority, "attempts": job.attempts,
        "maxAttempts": job.max_attempts, "result": mask(job.result, mask_keys),
        "error": mask_text(job.error, mask_keys),
        "errorType": job.error_type, "createdAt": iso_ms(job.created_ms),
        "startedAt": iso_ms(job.started_ms), "completedAt": iso_ms(job.completed_ms),
        "scheduledFor": iso_ms(job.scheduled_for_ms), "timeoutMs": job.timeout_ms,
        "idempotencyKey": job.idempotency_key, "workerId": job.worker_id,
        "batchId": str(job.batch_id) if job.batch_id is not None else None,
        "resultTtl": job.result_ttl_s, "resultExpiresAt": iso_ms(job.result_expires_ms),
        "resultExpired": job.result_expired,
    }
    if history:
        out["progress"] = job.progress.to_dict() if job.progress is not None else None
        out["attemptHistory"] = [{**attempt_json(a), "error": mask_text(a.error, mask_keys)}
                                 for a in job.attempts_history]
        out["dependsOn"] = [str(d) for d in job.depends_on]
    return out


def queue_controls_json(c: QueueControls) -> dict[str, Any]:
    return {"name": c.name, "paused": c.paused, "maxInFlight": c.max_in_flight}


def transition_json(job_id: uuid.UUID, status: Status) -> dict[str, Any]:
    return {"jobId": str(job_id), "status": status.value}
