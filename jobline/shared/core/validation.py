"""Validation of submissions, shared by every shell (REST, GraphQL, client, Lambda).

Invariant: a spec that passes here can be inserted without a database constraint error; every
rejection names the offending field.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from jobline.shared.core.models import PRIORITY_DEFAULT, PRIORITY_MAX, PRIORITY_MIN, JobSpec
from jobline.shared.dispatch.redis_dispatch import QUEUE_NAME
from jobline.shared.platform.config import Settings
from jobline.shared.platform.errors import PayloadTooLarge, ValidationFailed

# Defined with the retry policy (see there why); re-exported, the shells import them from here.
from jobline.shared.retry.policy import JOB_TYPE as JOB_TYPE
from jobline.shared.retry.policy import MAX_ATTEMPTS_LIMIT as MAX_ATTEMPTS_LIMIT
from jobline.shared.retry.policy import MAX_ERROR_TYPES as MAX_ERROR_TYPES
from jobline.shared.retry.policy import MAX_TIMEOUT_MS as MAX_TIMEOUT_MS
from jobline.shared.retry.policy import check_error_types

#: Per job; a wider fan-in is better expressed as a batch with an onComplete job.
MAX_DEPENDENCIES = 1_000


def encode_payload(payload: Any, settings: Settings, field: str = "payload") -> str:
    if not isinstance(payload, dict):
        raise ValidationFailed(field, "must be a JSON object")
    try:
        text = orjson.dumps(payload).decode()
    except TypeError as e:
        raise ValidationFailed(field, f"not JSON-serialisable: {e}") from None
    # PostgreSQL's jsonb cannot store U+0000; refuse it here instead of failing at INSERT.
    if "\\u0000" in text:
        raise ValidationFailed(field, "must not contain the NUL character (\\u0000)")
    if len(text) > settings.max_payload_bytes:
        raise PayloadTooLarge(
            field, f"{len(text)} bytes exceeds the limit of {settings.max_payload_bytes} bytes")
    return text


def check_bulk_size(settings: Settings, n: int, field: str = "jobs") -> None:
    """Refuse a bulk submission of more than ``settings.max_bulk_jobs`` jobs (one job is never
    "bulk": a single submission always passes). Every shell gets this from the core operation;
    a shell may call it early, before per-item work, on the raw count."""
    if n > max(settings.max_bulk_jobs, 1):
        raise ValidationFailed(field, f"{n} jobs exceeds the limit of {settings.max_bulk_jobs}")


#: Longest result TTL a submission may ask for (ten years, in seconds).
MAX_RESULT_TTL_S = 10 * 365 * 86_400


def check_spec(spec: JobSpec, settings: Settings, where: str = "") -> str:
    """Validate ``spec``; returns its payload encoded as JSON text. ``where`` prefixes field names
    (e.g. ``jobs[3].``) for bulk submissions."""
    if not isinstance(spec.queue, str) or not QUEUE_NAME.fullmatch(spec.queue):
        raise ValidationFailed(f"{where}queue",
                               "must be 1-64 characters of letters, digits, '.', '_', ':', '-'")
    if not isinstance(spec.job_type, str) or not JOB_TYPE.fullmatch(spec.job_type):
        raise ValidationFailed(f"{where}jobType",
                               "must start with a letter or '_' and use letters, digits, '._:-'")
    if not isinstance(spec.priority, int) or not PRIORITY_MIN <= spec.priority <= PRIORITY_MAX:
        raise ValidationFailed(f"{where}priority", f"must be an integer {PRIORITY_MIN}-{PRIORITY_MAX}")
    if spec.max_attempts is not None and not 1 <= spec.max_attempts <= MAX_ATTEMPTS_LIMIT:
        raise ValidationFailed(f"{where}maxAttempts", f"must be 1-{MAX_ATTEMPTS_LIMIT}")
    if spec.delay_ms is not None and not 0 <= spec.delay_ms <= MAX_TIMEOUT_MS * 52:
        raise ValidationFailed(f"{where}delayMs", "must be 0 ms to one year")
    if spec.timeout_ms is not None and not 1 <= spec.timeout_ms <= MAX_TIMEOUT_MS:
        raise ValidationFailed(f"{where}timeoutMs", f"must be 1-{MAX_TIMEOUT_MS}")
    if spec.idempotency_key is not None and (not 1 <= len(spec.idempotency_key) <= 255
                                             or "\x00" in spec.idempotency_key):
        raise ValidationFailed(f"{where}idempotencyKey", "must be 1-255 characters")
    if spec.backoff is not None:
        b = spec.backoff
        if not isinstance(b, dict) or set(b) - {"baseMs", "factor", "capMs", "jitter",
                                                "adaptive"}:
            raise ValidationFailed(f"{where}backoff", "allowed keys: baseMs, factor, capMs, jitter")
        if "adaptive" in b and not isinstance(b["adaptive"], bool):
            raise ValidationFailed(f"{where}adaptive", "must be true or false")
        for key, lo in (("baseMs", 0), ("capMs", 0), ("factor", 1)):
            v = b.get(key)
            if v is not None and (not isinstance(v, int | float) or isinstance(v, bool) or v < lo):
                raise ValidationFailed(f"{where}backoff.{key}", f"must be a number >= {lo}")
    check_error_types(spec.non_retryable, f"{where}nonRetryable")
    if spec.result_ttl_s is not None and (
            not isinstance(spec.result_ttl_s, int) or isinstance(spec.result_ttl_s, bool)
            or not 0 <= spec.result_ttl_s <= MAX_RESULT_TTL_S):
        raise ValidationFailed(f"{where}resultTtl",
                               f"must be 0 (keep) to {MAX_RESULT_TTL_S} seconds")
    if len(spec.depends_on) > MAX_DEPENDENCIES:
        raise ValidationFailed(f"{where}dependsOn", f"at most {MAX_DEPENDENCIES} dependencies")
    for i, dep in enumerate(spec.depends_on):
        # an int is the index of an earlier job of the same bulk submission (submit_many checks)
        if not (isinstance(dep, uuid.UUID)
                or (isinstance(dep, int) and not isinstance(dep, bool) and dep >= 0)):
            raise ValidationFailed(f"{where}dependsOn[{i}]", "must be a job id (UUID)")
    return encode_payload(spec.payload, settings, f"{where}payload")


def default_priority() -> int:
    return PRIORITY_DEFAULT
