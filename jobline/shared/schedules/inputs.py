"""Schedule request models shared by the REST and GraphQL shells.

Same conventions as :mod:`jobline.shared.core.inputs` (camelCase, strict, unknown fields refused
by name); :mod:`jobline.shared.schedules.recurring` and :mod:`jobline.shared.schedules.cron`
remain the authority on what a valid schedule is.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic.alias_generators import to_camel

from jobline.shared.core.inputs import (
    JOB_TYPE_PATTERN,
    NO_NUL_PATTERN,
    QUEUE_PATTERN,
    InputModel,
    check_no_nul,
)
from jobline.shared.core.models import PRIORITY_DEFAULT, PRIORITY_MAX, PRIORITY_MIN
from jobline.shared.core.validation import MAX_ATTEMPTS_LIMIT, MAX_TIMEOUT_MS
from jobline.shared.platform.errors import ValidationFailed
from jobline.shared.schedules.recurring import MAX_NAME, ScheduleSpec

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME, pattern=NO_NUL_PATTERN)]
#: 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first.
Expression = Annotated[str, Field(min_length=9, max_length=255, pattern=NO_NUL_PATTERN)]
Timezone = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL_PATTERN)]
Overlap = Literal["skip", "allow"]
CatchUp = Literal["skip", "run_once"]
Priority = Annotated[int, Field(ge=PRIORITY_MIN, le=PRIORITY_MAX)]
MaxAttempts = Annotated[int, Field(ge=1, le=MAX_ATTEMPTS_LIMIT)]
TimeoutMs = Annotated[int, Field(ge=1, le=MAX_TIMEOUT_MS)]


class ScheduleIn(InputModel):
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
        check_no_nul(v)
        return v

    def to_spec(self) -> ScheduleSpec:
        return ScheduleSpec(**self.model_dump())


class SchedulePatchIn(InputModel):
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
        check_no_nul(v)
        return v

    def changes(self) -> dict[str, Any]:
        # Only fields present in the body; null is meaningful only for the optional overrides.
        out = self.model_dump(exclude_unset=True)
        for k, v in out.items():
            if v is None and k not in ("max_attempts", "timeout_ms"):
                raise ValidationFailed(to_camel(k), "must not be null")
        return out
