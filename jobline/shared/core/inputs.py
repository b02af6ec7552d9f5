"""Request models shared by the REST and GraphQL shells, and the pydantic-error translation.

Both shells validate a job submission with :class:`SubmitJobIn` (camelCase on the wire, strict
types, unknown fields refused by name), so a job GraphQL accepts is exactly one REST accepts.
The bounds repeat the core's so they appear in the OpenAPI document;
:func:`jobline.shared.core.validation.check_spec` stays the authority.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any

import pydantic
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel

from jobline.shared.core.models import PRIORITY_DEFAULT, PRIORITY_MAX, PRIORITY_MIN, JobSpec
from jobline.shared.core.validation import (
    MAX_ATTEMPTS_LIMIT,
    MAX_DEPENDENCIES,
    MAX_ERROR_TYPES,
    MAX_RESULT_TTL_S,
    MAX_TIMEOUT_MS,
)
from jobline.shared.platform.clock import from_dt
from jobline.shared.platform.errors import ValidationFailed

#: Patterns in Rust-regex syntax (pydantic-core) matching the core's ``QUEUE_NAME``/``JOB_TYPE``;
#: ``$`` there is a true end of string, unlike Python's, so no trailing newline slips through.
QUEUE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
JOB_TYPE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$"
#: Postgres text cannot hold NUL.
NO_NUL_PATTERN = r"^[^\x00]*$"
#: Ten years: a later delay is almost certainly a unit mistake (seconds vs ms).
MAX_DELAY_MS = 10 * 365 * 24 * 3_600_000

class InputModel(BaseModel):
    """Base of every request model: camelCase aliases, strict types, unknown fields refused
    by name (a misspelt field is an error, not silently ignored)."""


    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True,
                              strict=True)


# --- requests ----------------------------------------------------------------------------------


class BackoffIn(InputModel):
    """Per-job retry policy: delay(n) = uniform(0, min(capMs, baseMs * factor**(n-1)))."""

    base_ms: Annotated[int, Field(ge=0, le=MAX_TIMEOUT_MS)] | None = None
    factor: Annotated[float, Field(ge=1, le=100)] | None = None
    cap_ms: Annotated[int, Field(ge=0, le=MAX_DELAY_MS)] | None = None
    jitter: bool | None = None


def check_no_nul(value: Any, path: str = "payload") -> None:
    """Postgres ``jsonb`` rejects ``\\u0000`` in any string; refuse it up front with a 422."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{path}: strings must not contain NUL (\\u0000)")
    elif isinstance(value, dict):
        for k, v in value.items():
            if "\x00" in k:
                raise ValueError(f"{path}: keys must not contain NUL (\\u0000)")
            check_no_nul(v, path)
    elif isinstance(value, list):
        for v in value:
            check_no_nul(v, path)


def _dependency(v: Any) -> uuid.UUID | int:
    # One validator instead of a ``UUID | int`` union, so an error names ``dependsOn[i]`` and
    # not the union member that failed last.
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    if isinstance(v, str):
        try:
            return uuid.UUID(v)
        except ValueError:
            pass
    raise ValueError("must be a job id (UUID), or in a bulk request the index of an earlier job")


#: A job id, or (bulk submissions and batches) the 0-based index of an earlier job of the request.
Dependency = Annotated[uuid.UUID | int, PlainValidator(_dependency), WithJsonSchema(
    {"oneOf": [{"type": "string", "format": "uuid"}, {"type": "integer", "minimum": 0}]})]


class SubmitJobIn(InputModel):
    """One job to submit (``POST /api/v1/jobs`` body and each item of a bulk submission)."""

    #: Omitted: the queue the job type's handler is registered for, else ``default``.
    queue: Annotated[str, Field(pattern=QUEUE_PATTERN)] | None = None
    job_type: Annotated[str, Field(pattern=JOB_TYPE_PATTERN)]
    payload: dict[str, Any] = Field(default_factory=dict)
    priority: Annotated[int, Field(ge=PRIORITY_MIN, le=PRIORITY_MAX)] = PRIORITY_DEFAULT
    max_attempts: Annotated[int, Field(ge=1, le=MAX_ATTEMPTS_LIMIT)] | None = None
    #: ISO 8601 with a timezone offset; when to run at the earliest.
    scheduled_for: Annotated[AwareDatetime, Field(strict=False)] | None = None
    delay_ms: Annotated[int, Field(ge=0, le=MAX_DELAY_MS)] | None = None
    timeout_ms: Annotated[int, Field(ge=1, le=MAX_TIMEOUT_MS)] | None = None
    idempotency_key: Annotated[str, Field(min_length=1, max_length=255,
                                          pattern=NO_NUL_PATTERN)] | None = None
    backoff: BackoffIn | None = None
    #: Error types that go straight to the dead-letter queue for this job (overrides the job
    #: type's policy; ``[]`` retries everything).
    non_retryable: Annotated[list[Annotated[str, Field(min_length=1, max_length=255,
                                                       pattern=NO_NUL_PATTERN)]],
                             Field(max_length=MAX_ERROR_TYPES)] | None = None
    #: Let the retry advisor decide whether and when this job is retried (over the job type's
    #: policy; false turns it off for this job).
    adaptive: bool | None = None
    #: Stay ``waiting`` until these jobs complete (cancelled if one of them fails for good).
    depends_on: Annotated[list[Dependency], Field(max_length=MAX_DEPENDENCIES)] | None = None
    #: Seconds the result is kept after the job completes (0: kept; default: the job type's
    #: ``@job(result_ttl=...)``, else ``JOBLINE_RESULT_TTL_S``).
    result_ttl: Annotated[int, Field(ge=0, le=MAX_RESULT_TTL_S)] | None = None

    @field_validator("scheduled_for", mode="before")
    @classmethod
    def _iso_string_only(cls, v: Any) -> Any:
        # Lax datetime parsing would also take a number as a Unix timestamp; the contract is an
        # ISO 8601 string, and a bare number is ambiguous (seconds or ms?).
        if v is not None and not isinstance(v, str):
            raise ValueError("must be an ISO 8601 date-time string with a timezone")
        return v

    @field_validator("payload")
    @classmethod
    def _payload_storable(cls, v: dict[str, Any]) -> dict[str, Any]:
        check_no_nul(v)
        return v

    @field_validator("delay_ms")
    @classmethod
    def _one_start_time(cls, v: int | None, info: Any) -> int | None:
        # Fields validate in declaration order, so scheduledFor is already in info.data.
        if v is not None and info.data.get("scheduled_for") is not None:
            raise ValueError("give either scheduledFor or delayMs, not both")
        return v

    def to_spec(self, now_ms: int) -> JobSpec:
        due: int | None = None
        if self.scheduled_for is not None:
            due = from_dt(self.scheduled_for)
        backoff = (self.backoff.model_dump(by_alias=True, exclude_none=True)
                   if self.backoff is not None else None)
        if self.adaptive is not None:
            backoff = {**(backoff or {}), "adaptive": self.adaptive}
        return JobSpec(queue=self.queue or "default", queue_given=self.queue is not None,
                       job_type=self.job_type, payload=self.payload,
                       priority=self.priority, max_attempts=self.max_attempts,
                       scheduled_for_ms=due, delay_ms=self.delay_ms or None,
                       timeout_ms=self.timeout_ms,
                       idempotency_key=self.idempotency_key, backoff=backoff or None,
                       non_retryable=tuple(self.non_retryable)
                       if self.non_retryable is not None else None,
                       depends_on=tuple(self.depends_on or ()),
                       result_ttl_s=self.result_ttl)


def loc_to_field(loc: Sequence[int | str], prefix: str = "") -> str:
    """``("jobs", 3, "backoff", "baseMs")`` -> ``jobs[3].backoff.baseMs`` (aliases are in loc)."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def _message(err: Any) -> str:
    if err["type"] in ("model_type", "dict_type", "model_attributes_type"):
        # pydantic names the model class ("instance of SubmitJobIn"): say it in JSON terms
        got = err.get("input")
        kind = ("an array" if isinstance(got, list) else "a string" if isinstance(got, str)
                else "null" if got is None else "a boolean" if isinstance(got, bool)
                else "a number" if isinstance(got, int | float) else None)
        return "must be a JSON object" + (f", not {kind}" if kind else "")
    if err["type"] == "extra_forbidden":
        return "unknown field"
    # A failing field_validator reports "Value error, ...": keep only the explanation.
    return str(err["msg"]).removeprefix("Value error, ")


def validation_failed(e: pydantic.ValidationError, prefix: str = "") -> ValidationFailed:
    """Every pydantic error as one core :class:`ValidationFailed` (the first error on top, all of
    them in ``errors``), each naming its field."""
    found = [(loc_to_field(err["loc"], prefix), _message(err))
             for err in e.errors(include_url=False, include_input=True)]
    return ValidationFailed(found[0][0], found[0][1], found)
