"""``/api/v1/retry-policies``: the stored per-job-type retry policies (put, get, list, delete).

The request/response models live here with their routes; the core
(:mod:`jobline.shared.retry.policy_store`) validates again and is the authority.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from jobline.api.body import parse_json, read_body
from jobline.api.context import ctx
from jobline.api.docs import Op, Resp, documented
from jobline.api.errors import JSONResponse, by_method, endpoint
from jobline.api.jobs import validate
from jobline.api.schemas import _In, _Out, iso_ms
from jobline.shared.core.inputs import NO_NUL_PATTERN, BackoffIn
from jobline.shared.retry import policy_store as store
from jobline.shared.retry.policy import (
    MAX_ATTEMPTS_LIMIT,
    MAX_ERROR_TYPES,
    RetryPolicy,
    StoredRetryPolicy,
)

_SMALL_BODY = 16_384

ErrorType = Annotated[str, Field(min_length=1, max_length=255, pattern=NO_NUL_PATTERN)]


class RetryPolicyIn(_In):
    """``PUT /api/v1/retry-policies/{jobType}``: replaces the policy whole; an absent field is
    unset and falls through to the handler decorator, then the global settings."""

    max_attempts: Annotated[int, Field(ge=1, le=MAX_ATTEMPTS_LIMIT)] | None = None
    backoff: BackoffIn | None = None
    non_retryable: Annotated[list[ErrorType], Field(max_length=MAX_ERROR_TYPES)] | None = None
    #: Hand retry decisions (retry or not, how soon) to the advisor; docs/retry-policy.md.
    adaptive: bool | None = None

    def to_policy(self) -> RetryPolicy:
        backoff = (self.backoff.model_dump(by_alias=True, exclude_none=True)
                   if self.backoff is not None else None)
        return RetryPolicy(self.max_attempts, backoff or None,
                           tuple(self.non_retryable) if self.non_retryable is not None else None,
                           self.adaptive)


class BackoffOut(_Out):
    base_ms: int | None = None
    factor: float | None = None
    cap_ms: int | None = None
    jitter: bool | None = None


class RetryPolicyOut(_Out):
    job_type: str
    max_attempts: int | None
    backoff: BackoffOut | None
    non_retryable: list[str] | None
    adaptive: bool | None = None
    created_at: str
    updated_at: str


class RetryPolicyListOut(_Out):
    policies: list[RetryPolicyOut]


def policy_json(p: StoredRetryPolicy) -> dict[str, Any]:
    return {"jobType": p.job_type, **p.policy.to_json(), "createdAt": iso_ms(p.created_ms),
            "updatedAt": iso_ms(p.updated_ms)}


def _job_type(request: Request) -> str:
    job_type: str = request.path_params["jobType"]
    return job_type


@documented(Op("putRetryPolicy", "Create or replace a job type's retry policy",
                body=RetryPolicyIn, responses={200: Resp("Stored", RetryPolicyOut)},
                errors=(400, 413, 422, 503)))
@endpoint
async def put_policy(request: Request) -> Response:
    job_type = _job_type(request)
    body = validate(RetryPolicyIn, parse_json(await read_body(request, _SMALL_BODY)))
    p = await store.put_retry_policy(ctx(request).require_deps(), job_type, body.to_policy())
    return JSONResponse(policy_json(p))


@documented(Op("getRetryPolicy", "A job type's stored retry policy",
                responses={200: Resp("The policy", RetryPolicyOut)}, errors=(404, 422, 503)))
@endpoint
async def get_policy(request: Request) -> Response:
    p = await store.get_retry_policy(ctx(request).require_deps(), _job_type(request))
    return JSONResponse(policy_json(p))


@documented(Op("deleteRetryPolicy", "Remove it (handler and global settings apply again)",
                responses={204: Resp("Deleted")}, errors=(404, 422, 503)))
@endpoint
async def delete_policy(request: Request) -> Response:
    await store.delete_retry_policy(ctx(request).require_deps(), _job_type(request))
    return Response(status_code=204)


@documented(Op("listRetryPolicies", "Stored per-job-type policies",
                responses={200: Resp("Policies", RetryPolicyListOut)}, errors=(503,)))
@endpoint
async def list_policies(request: Request) -> Response:
    ps = await store.list_retry_policies(ctx(request).require_deps())
    return JSONResponse({"policies": [policy_json(p) for p in ps]})


routes = [
    by_method("/api/v1/retry-policies", {"GET": list_policies}, name="retry_policies"),
    by_method("/api/v1/retry-policies/{jobType}",
              {"GET": get_policy, "PUT": put_policy, "DELETE": delete_policy},
              name="retry_policy"),
]
