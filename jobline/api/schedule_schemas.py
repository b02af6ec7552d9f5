"""Request and response models of ``/api/v1/scheduled-jobs`` and the queue rate limit.

Kept apart from :mod:`jobline.api.schemas` (same conventions: camelCase, strict, extra fields
rejected by name); the core (:mod:`jobline.shared.schedules.recurring`, :mod:`jobline.shared.schedules.cron`)
remains the authority on what a valid schedule is.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic.alias_generators import to_camel

from jobline.api.schemas import (
    JOB_TYPE_PATTERN,
    NO_NUL_PATTERN,
    QUEUE_PATTERN,
    _check_no_nul,
    _In,
    _Out,
    iso_ms,
)
from jobline.shared.core.models import PRIORITY_DEFAULT, PRIORITY_MAX, PRIORITY_MIN
from jobline.shared.core.validation import MAX_ATTEMPTS_LIMIT, MAX_TIMEOUT_MS
from jobline.shared.dispatch.rate_limits import MAX_RATE_LIMIT, MAX_WINDOW_MS
from jobline.shared.platform.errors import ValidationFailed
from jobline.shared.schedules.recurring import MAX_NAME, Schedule, ScheduleSpec
from jobline.shared.security.masking import DEFAULT_MASK_KEYS, mask

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME, pattern=NO_NUL_PATTERN)]
#: 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first.
Expression = Annotated[str, Field(min_length=9, max_length=255, pattern=NO_NUL_PATTERN)]
Timezone = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL_PATTERN)]
Overlap = Literal["skip", "allow"]
CatchUp = Literal["skip", "run_once"]
Priority = Annotated[int, Field(ge=PRIORITY_MIN, le=PRIORITY_MAX)]
MaxAttempts = Annotated[int, Field(ge=1, le=MAX_ATTEMPTS_LIMIT)]
TimeoutMs = Annotated[int, Field(ge=1, le=MAX_TIMEOUT_MS)]


class ScheduleIn(_In):
    """``POST /api/v1/scheduled-jobs`` (the seed's body plus the policy fields)."""

    name: Name
    queue: Annotated[str, Field(pattern=QUEUE_PATTERN)] = "default"
    job_type: Annotated[str, Field(pattern=JOB_TYPE_PATTERN)]
    payload: dict[str, Any] = Field(default_factory=dict)
    schedule: Expression
    #: IANA name; fire times follow its DST rules.
    timezone: Timezone = "UTC"
    enabled: bool = True
    #: ``skip``: skip a fire time while the previous run is unfinished.
    overlap_policy: Overlap = "allow"
    #: After downtime: ``run_once`` submits one run for all missed fire times, ``skip`` none.
    catch_up: CatchUp = "run_once"
    priority: Priority = PRIORITY_DEFAULT
    max_attempts: MaxAttempts | None = None
    timeout_ms: TimeoutMs | None = None

    @field_validator("payload")
    @classmethod
    def _payload_storable(cls, v: dict[str, Any]) -> dict[str, Any]:
        _check_no_nul(v)
        return v

    def to_spec(self) -> ScheduleSpec:
        return ScheduleSpec(**self.model_dump())


class SchedulePatchIn(_In):
    """``PATCH /api/v1/scheduled-jobs/{id}``: any subset of the fields; absent ones are kept."""

    name: Name | None = None
    queue: Annotated[str, Field(pattern=QUEUE_PATTERN)] | None = None
    job_type: Annotated[str, Field(pattern=JOB_TYPE_PATTERN)] | None = None
    payload: dict[str, Any] | None = None
    schedule: Expression | None = None
    timezone: Timezone | None = None
    enabled: bool | None = None
    overlap_policy: Overlap | None = None
    catch_up: CatchUp | None = None
    priority: Priority | None = None
    #: ``null`` clears the override.
    max_attempts: MaxAttempts | None = None
    timeout_ms: TimeoutMs | None = None

    @field_validator("payload")
    @classmethod
    def _payload_storable(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        _check_no_nul(v)
        return v

    def changes(self) -> dict[str, Any]:
        # Only fields present in the body; null is meaningful only for the optional overrides.
        out = self.model_dump(exclude_unset=True)
        for k, v in out.items():
            if v is None and k not in ("max_attempts", "timeout_ms"):
                raise ValidationFailed(to_camel(k), "must not be null")
        return out


class ScheduleOut(_Out):
    id: uuid.UUID
    name: str
    queue: str
    job_type: str
    payload: dict[str, Any]
    schedule: str
    timezone: str
    enabled: bool
    overlap_policy: Overlap
    catch_up: CatchUp
    priority: int
    max_attempts: int | None
    timeout_ms: int | None
    #: Earliest fire time not handled yet.
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_job_id: uuid.UUID | None
    #: The next 5 fire times (empty while disabled).
    next_runs: list[datetime]
    created_at: datetime
    updated_at: datetime


class ScheduleListOut(_Out):
    scheduled_jobs: list[ScheduleOut]


class RateLimitIn(_In):
    """``PUT /api/v1/queues/{name}/rate-limit``: at most ``limit`` job starts in any
    ``windowMs`` across all workers."""

    limit: Annotated[int, Field(ge=1, le=MAX_RATE_LIMIT)]
    window_ms: Annotated[int, Field(ge=1, le=MAX_WINDOW_MS)]


class RateLimitOut(_Out):
    limit: int
    window_ms: int


class QueueRateLimitOut(_Out):
    name: str
    paused: bool
    max_in_flight: int | None
    rate_limit: RateLimitOut | None


def schedule_json(s: Schedule, mask_keys: Sequence[str] = DEFAULT_MASK_KEYS) -> dict[str, Any]:
    """Payload secrets are masked: a client editing a schedule resends them."""
    p = s.spec
    return {
        "id": str(s.id), "name": p.name, "queue": p.queue, "jobType": p.job_type,
        "payload": mask(p.payload, mask_keys), "schedule": p.schedule, "timezone": p.timezone,
        "enabled": p.enabled, "overlapPolicy": p.overlap_policy, "catchUp": p.catch_up,
        "priority": p.priority, "maxAttempts": p.max_attempts, "timeoutMs": p.timeout_ms,
        "nextRunAt": iso_ms(s.next_run_ms), "lastRunAt": iso_ms(s.last_run_ms),
        "lastJobId": str(s.last_job_id) if s.last_job_id else None,
        "nextRuns": [iso_ms(t) for t in s.next_runs],
        "createdAt": iso_ms(s.created_ms), "updatedAt": iso_ms(s.updated_ms),
    }
