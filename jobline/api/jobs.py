"""``/api/v1/jobs``: submit, bulk submit, read, list, cancel, retry.

Every handler is the same three steps: validate (nothing is stored on a rejected request), one
core operation, serialise.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar, get_args

import pydantic
from starlette.requests import Request
from starlette.responses import Response

from jobline.api.body import bulk_body_limit, parse_json, read_body, single_body_limit
from jobline.api.context import ctx, read
from jobline.api.docs import Op, Resp, cursor, documented, page_size, query
from jobline.api.errors import (
    JSONResponse,
    by_method,
    check_query_params,
    endpoint,
    validation_failed,
)
from jobline.api.schemas import (
    BulkSubmitIn,
    BulkSubmittedOut,
    CancelRequestedOut,
    JobListOut,
    JobOut,
    ListJobsQuery,
    StatusName,
    SubmittedOut,
    TransitionOut,
    job_json,
    submitted_json,
    transition_json,
)
from jobline.shared.core import jobs as core
from jobline.shared.core.inputs import SubmitJobIn
from jobline.shared.core.models import Status
from jobline.shared.core.validation import check_bulk_size
from jobline.shared.platform.errors import ValidationFailed

M = TypeVar("M", bound=pydantic.BaseModel)


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as e:
        raise validation_failed(e) from None


async def read_bulk(request: Request, model: type[M]) -> M:
    """A bulk body (``{"jobs": [...]}``) read under the bulk size limit and validated as
    ``model``. The core enforces the bulk and backlog caps; counting the raw list first (same
    check, same error) spares an oversized request the per-item model validation. 422 rather
    than 413: the document declares maxItems, so this is a schema violation."""
    c = ctx(request)
    data = parse_json(await read_body(request, bulk_body_limit(c.settings)))
    if isinstance(data, dict) and isinstance(data.get("jobs"), list):
        check_bulk_size(c.settings, len(data["jobs"]))
    return validate(model, data)


def job_id_param(request: Request) -> uuid.UUID:
    # The route's ``uuid`` convertor already refused malformed ids with a 404.
    job_id: uuid.UUID = request.path_params["jobId"]
    return job_id


def _link(operation_id: str) -> dict[str, Any]:
    # Links let stateful testers (and readers) follow a submitted job to what can be done to it.
    return {"operationId": operation_id, "parameters": {"jobId": "$response.body#/jobId"}}


@documented(Op(
    "submitJob", "Submit a job", body=SubmitJobIn, errors=(400, 409, 413, 422, 503), responses={
        201: Resp("Stored and dispatched", SubmittedOut, links={
            "GetJob": _link("getJob"), "CancelJob": _link("cancelJob"),
            "RetryJob": _link("retryJob")}),
        200: Resp("Idempotency key already used: the existing job, duplicate=true",
                  SubmittedOut)}))
@endpoint
async def submit_job(request: Request) -> Response:
    c = ctx(request)
    raw = await read_body(request, single_body_limit(c.settings))
    item = validate(SubmitJobIn, parse_json(raw))
    committer = c.require_committer()
    # The committer applies the backlog cap (503) before queueing the job for its flush.
    res = await committer.submit(item.to_spec(committer.deps.clock.now_ms()))
    return JSONResponse(submitted_json(res), status_code=200 if res.submitted.duplicate else 201)


@documented(Op(
    "submitJobs", "Submit many jobs, all or nothing", body=BulkSubmitIn,
    responses={201: Resp("All stored", BulkSubmittedOut)}, errors=(400, 409, 413, 422, 503)))
@endpoint
async def submit_bulk(request: Request) -> Response:
    c = ctx(request)
    deps = c.require_deps()
    body = await read_bulk(request, BulkSubmitIn)
    now = deps.clock.now_ms()
    specs = [item.to_spec(now) for item in body.jobs]
    # One transaction: every item is validated, then the backlog cap checked (503), before
    # anything is stored.
    results = await core.submit_many(deps, specs, positions=True,
                                     where=lambda i: f"jobs[{i}].")
    return JSONResponse({"jobs": [submitted_json(r) for r in results]}, status_code=201)


@documented(Op(
    "getJob", "A job with its attempt history", responses={200: Resp("The job", JobOut)},
    errors=(404, 503)))
@endpoint
async def get_job(request: Request) -> Response:
    c = ctx(request)
    job = await core.get_job(c.require_deps(), job_id_param(request))
    return JSONResponse(job_json(job, mask_keys=c.settings.mask_keys))


@documented(Op(
    "listJobs", "List jobs, newest first", params=(
        query("queue", {"type": "string", "maxLength": 64}),
        query("status", {"type": "string", "enum": list(get_args(StatusName))}),
        query("jobType", {"type": "string", "maxLength": 128}),
        query("page", {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1}),
        page_size, cursor()),
    responses={200: Resp("A page of jobs", JobListOut)}, errors=(400, 422, 503)))
@endpoint
async def list_jobs(request: Request) -> Response:
    c = ctx(request)
    check_query_params(request.query_params.keys(), ListJobsQuery)
    q = validate(ListJobsQuery, dict(request.query_params))
    if q.page_size > c.settings.max_page_size:
        raise ValidationFailed("pageSize", f"must be at most {c.settings.max_page_size}")
    page = await read(request, lambda deps: core.list_jobs(
        deps, queue=q.queue, status=q.status, job_type=q.job_type, page=q.page,
        page_size=q.page_size, cursor=str(q.cursor) if q.cursor else None))
    return JSONResponse({"jobs": [job_json(j, history=False, mask_keys=c.settings.mask_keys)
                                  for j in page.jobs],
                         "page": q.page, "pageSize": q.page_size, "total": page.total,
                         "nextCursor": page.next_cursor})


@documented(Op(
    "cancelJob", "Cancel a job; a running one is asked to stop (cooperative)", responses={
        200: Resp("Cancelled", TransitionOut),
        202: Resp("Running: cancel requested, handler signalled", CancelRequestedOut)},
    errors=(404, 409, 503)))
@endpoint
async def cancel_job(request: Request) -> Response:
    job_id = job_id_param(request)
    status = await core.cancel(ctx(request).require_deps(), job_id)
    if status == Status.PROCESSING:
        # accepted, not done: the running handler was asked to stop
        return JSONResponse({**transition_json(job_id, status), "cancelRequested": True},
                            status_code=202)
    return JSONResponse(transition_json(job_id, status))


@documented(Op(
    "retryJob", "Send a failed job back to pending",
    responses={200: Resp("Pending again", TransitionOut)}, errors=(404, 409, 503)))
@endpoint
async def retry_job(request: Request) -> Response:
    job_id = job_id_param(request)
    status = await core.retry_now(ctx(request).require_deps(), job_id)
    return JSONResponse(transition_json(job_id, status))


# One Route per path, so a 405 lists every method the path supports in ``Allow``. The uuid
# convertor makes a malformed id a plain 404 and keeps "/jobs/bulk" from reading as an id.
routes = [
    by_method("/api/v1/jobs", {"GET": list_jobs, "POST": submit_job}, name="jobs"),
    by_method("/api/v1/jobs/bulk", {"POST": submit_bulk}, name="jobs_bulk"),
    by_method("/api/v1/jobs/{jobId:uuid}", {"GET": get_job, "DELETE": cancel_job}, name="job"),
    by_method("/api/v1/jobs/{jobId:uuid}/retry", {"POST": retry_job}, name="job_retry"),
]
