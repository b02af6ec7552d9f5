"""The GraphQL input types and their conversion to core values.

A submitted job is validated by the same model as a REST one
(:class:`jobline.shared.core.inputs.SubmitJobIn`) and then by the core's ``check_spec``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pydantic
import strawberry
from pydantic.alias_generators import to_camel
from strawberry.scalars import JSON

from jobline.shared.core.inputs import SubmitJobIn, validation_failed
from jobline.shared.core.validation import check_spec
from jobline.shared.events.livefeed import EventFilter
from jobline.shared.platform.errors import ValidationFailed
from jobline.shared.retry import dlq

from .common import parse_id
from .types import JobStatus


@strawberry.input
class JobFilter:
    queue: str | None = None
    status: JobStatus | None = None  # type: ignore[valid-type]
    job_type: str | None = None
    error_type: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    payload_match: JSON | None = strawberry.field(
        default=None, description="JSON containment: jobs whose payload contains this object.")
    search: str | None = strawberry.field(
        default=None, description="A job id, or text within the error message.")


@strawberry.input
class SubmitJobInput:
    queue: str | None = strawberry.field(
        default=None, description="Omitted: the queue the job type is registered for, else "
                                  "'default'.")
    job_type: str
    payload: JSON | None = None
    priority: int | None = None
    max_attempts: int | None = None
    scheduled_for: datetime | None = None
    delay_ms: int | None = None
    timeout_ms: int | None = None
    idempotency_key: str | None = None
    depends_on: list[str] | None = strawberry.field(
        default=None, description="Job ids, or (in submitMany/createBatch) earlier indexes.")
    result_ttl: int | None = strawberry.field(
        default=None, description="Seconds the result is kept once the job completes (0: kept; "
                                  "default: the job type's, else the server's default).")

    def to_rest(self) -> dict[str, Any]:
        """The REST body of this input: camelCase keys, so a validation error names the field
        as REST does (``input.scheduledFor``, not ``input.scheduled_for``)."""
        out: dict[str, Any] = {}
        for k, v in vars(self).items():
            if v is None:
                continue
            if k == "scheduled_for":
                v = v.isoformat()
            if k == "depends_on":
                v = [int(x) if x.isdigit() else x for x in v]
            out[to_camel(k)] = v
        return out


@strawberry.input
class DlqFilterInput:
    ids: list[str] | None = None
    queue: str | None = None
    job_type: str | None = None
    error_type: str | None = None
    dead_lettered_from: datetime | None = None
    dead_lettered_to: datetime | None = None

    def to_core(self) -> dlq.DlqFilter:
        return dlq.DlqFilter(
            ids=tuple(parse_id(i, f"filter.ids[{n}]") for n, i in enumerate(self.ids))
            if self.ids is not None else None, queue=self.queue, job_type=self.job_type,
            error_type=self.error_type,
            from_ms=int(self.dead_lettered_from.timestamp() * 1000)
            if self.dead_lettered_from else None,
            to_ms=int(self.dead_lettered_to.timestamp() * 1000) if self.dead_lettered_to else None)


@strawberry.input
class ScheduleInput:
    name: str | None = None
    queue: str | None = None
    job_type: str | None = None
    payload: JSON | None = None
    schedule: str | None = None
    timezone: str | None = None
    enabled: bool | None = None
    overlap_policy: str | None = None
    catch_up: str | None = None
    priority: int | None = None
    max_attempts: int | None = None
    timeout_ms: int | None = None

    def given(self) -> dict[str, Any]:
        # camelCase keys: validation errors name fields as REST does
        return {to_camel(k): v for k, v in vars(self).items() if v is not None}


@strawberry.input
class EventFilterInput:
    types: list[str] | None = None
    queue: str | None = None
    job_id: str | None = None


def spec_of(item: SubmitJobInput, now: int, where: str, settings: Any) -> Any:
    try:
        model = SubmitJobIn.model_validate(item.to_rest())
    except pydantic.ValidationError as e:
        raise validation_failed(e, where.rstrip(".")) from None
    spec = model.to_spec(now)
    check_spec(spec, settings, where)
    return spec


def event_filter(f: EventFilterInput | None) -> EventFilter:
    if f is None:
        return EventFilter()
    from jobline.shared.events.outbox import EVENT_TYPES

    for t in f.types or ():
        if t not in EVENT_TYPES:
            raise ValidationFailed("filter.types", f"unknown event type {t!r}")
    return EventFilter(types=frozenset(f.types) if f.types else None, queue=f.queue,
                       job_id=parse_id(f.job_id, "filter.jobId") if f.job_id else None)
