"""The stored per-job-type retry policies (``retry_policies``): put, get, list, delete.

Kept apart from :mod:`jobline.shared.retry.policy` (vocabulary, validation, resolution) because
that module is imported by the job operations, and these operations use theirs.
"""

from __future__ import annotations

from jobline.shared.core.jobs import translate_errors
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import NotFound
from jobline.shared.retry.policy import (
    DELETE_RETRY_POLICY,
    GET_RETRY_POLICY,
    LIST_RETRY_POLICIES,
    UPSERT_RETRY_POLICY,
    RetryPolicy,
    StoredRetryPolicy,
    check_job_type,
    check_policy,
    stored_policy,
)


@translate_errors
async def put_retry_policy(deps: Deps, job_type: str, policy: RetryPolicy) -> StoredRetryPolicy:
    """Create or replace the stored policy of ``job_type``. Applies to jobs submitted from now on
    (max_attempts, backoff) and to every attempt that fails from now on (non_retryable)."""
    check_job_type(job_type)
    p = check_policy(policy)
    b = p.backoff or {}
    row = await deps.pool.fetchrow(
        UPSERT_RETRY_POLICY, job_type, p.max_attempts, b.get("baseMs"),
        float(b["factor"]) if "factor" in b else None, b.get("capMs"), b.get("jitter"),
        list(p.non_retryable) if p.non_retryable is not None else None,
        to_dt(deps.clock.now_ms()), p.adaptive)
    return stored_policy(row)


@translate_errors
async def get_retry_policy(deps: Deps, job_type: str) -> StoredRetryPolicy:
    check_job_type(job_type)
    row = await deps.pool.fetchrow(GET_RETRY_POLICY, job_type)
    if row is None:
        raise NotFound(f"no retry policy for job type {job_type!r}")
    return stored_policy(row)


@translate_errors
async def list_retry_policies(deps: Deps) -> list[StoredRetryPolicy]:
    return [stored_policy(r) for r in await deps.pool.fetch(LIST_RETRY_POLICIES)]


@translate_errors
async def delete_retry_policy(deps: Deps, job_type: str) -> None:
    """Remove the stored policy: the job type falls back to its handler and global settings."""
    check_job_type(job_type)
    if await deps.pool.fetchval(DELETE_RETRY_POLICY, job_type) is None:
        raise NotFound(f"no retry policy for job type {job_type!r}")
