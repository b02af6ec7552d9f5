"""Request and response models of ``/api/v1/scheduled-jobs`` and the queue rate limit.

The request models (``ScheduleIn``, ``SchedulePatchIn``) are shared with GraphQL and live in
:mod:`jobline.shared.schedules.inputs`. Kept apart from :mod:`jobline.api.schemas` (same conventions: camelCase, strict, extra fields
rejected by name); the core (:mod:`jobline.shared.schedules.recurring`, :mod:`jobline.shared.schedules.cron`)
remains the authority on what a valid schedule is.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from jobline.api.schemas import _In, _Out, iso_ms
from jobline.shared.dispatch.rate_limits import MAX_RATE_LIMIT, MAX_WINDOW_MS
from jobline.shared.schedules.inputs import CatchUp, Overlap
from jobline.shared.schedules.recurring import Schedule
from jobline.shared.security.masking import DEFAULT_MASK_KEYS, mask


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
