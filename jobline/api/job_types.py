"""``/api/v1/job-types``: the job-type registry (docs/job-types.md).

``GET /api/v1/job-types`` lists every type a worker has published a handler for (or was handed
without one), with the defaults a submission that omits them gets, and the live workers serving
it; a type no live worker serves says so (``served: false``) with a count of its waiting jobs.
``POST /api/v1/worker/job-types`` is how a remote worker publishes its handlers (a direct worker
writes the table itself).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from jobline.api.body import parse_json, read_body
from jobline.api.context import ctx
from jobline.api.docs import OBJECT, Op, Resp, documented
from jobline.api.errors import JSONResponse, by_method, endpoint
from jobline.api.jobs import validate
from jobline.api.retry_policies import ErrorType
from jobline.api.schemas import _In
from jobline.shared.core import job_types as core
from jobline.shared.core.inputs import JOB_TYPE_PATTERN, QUEUE_PATTERN, BackoffIn
from jobline.shared.retry.policy import MAX_ATTEMPTS_LIMIT, MAX_ERROR_TYPES, MAX_TIMEOUT_MS

_BODY_LIMIT = 1_048_576
JobTypeName = Annotated[str, Field(pattern=JOB_TYPE_PATTERN)]


class JobTypeIn(_In):
    """One handler's ``@job`` settings; an absent field is not set by the handler."""

    job_type: JobTypeName
    queue: Annotated[str, Field(pattern=QUEUE_PATTERN)] | None = None
    max_attempts: Annotated[int, Field(ge=1, le=MAX_ATTEMPTS_LIMIT)] | None = None
    timeout_ms: Annotated[int, Field(ge=1, le=MAX_TIMEOUT_MS)] | None = None
    backoff: BackoffIn | None = None
    non_retryable: Annotated[list[ErrorType], Field(max_length=MAX_ERROR_TYPES)] | None = None

    def to_core(self) -> core.JobTypeDefaults:
        backoff = (self.backoff.model_dump(by_alias=True, exclude_none=True)
                   if self.backoff is not None else None)
        return core.JobTypeDefaults(
            self.job_type, self.queue, self.max_attempts, self.timeout_ms, backoff or None,
            tuple(self.non_retryable) if self.non_retryable is not None else None)


class PublishIn(_In):
    types: Annotated[list[JobTypeIn], Field(max_length=1000)] = []
    #: Types the worker was handed and has no handler for.
    unhandled: Annotated[list[JobTypeName], Field(max_length=1000)] = []


_LIST = Resp("The registered job types", {"type": "object", "properties": {
    "jobTypes": {"type": "array", "items": OBJECT}}})


@documented(Op(
    "listJobTypes", "Job types with their registered defaults and the live workers serving them",
    responses={200: _LIST}, errors=(503,)))
@endpoint
async def list_job_types(request: Request) -> Response:
    types = await core.list_job_types(ctx(request).require_deps())
    return JSONResponse({"jobTypes": [t.to_json() for t in types]})


@documented(Op(
    "workerJobTypes", "Publish a worker's handlers (and the types it had no handler for)",
    body=PublishIn, responses={200: Resp("Recorded", OBJECT)}, errors=(400, 413, 422, 503)))
@endpoint
async def publish(request: Request) -> Response:
    body = validate(PublishIn, parse_json(await read_body(request, _BODY_LIMIT)))
    deps = ctx(request).require_deps()
    await core.publish(deps, [t.to_core() for t in body.types])
    await core.note_unhandled(deps, body.unhandled)
    return JSONResponse({"published": len(body.types), "unhandled": len(body.unhandled)})


routes = [
    by_method("/api/v1/job-types", {"GET": list_job_types}, name="job_types"),
    by_method("/api/v1/worker/job-types", {"POST": publish}, name="worker_job_types"),
]
