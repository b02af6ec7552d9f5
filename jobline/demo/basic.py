"""Tiny handlers used by benchmarks and fault-injection tests."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any, NoReturn

from jobline.demo._common import invalid, require_int, require_object
from jobline.shared.platform.errors import JobError, Retry
from jobline.worker.registry import JobContext, job

MAX_SLEEP_MS = 3_600_000
FLAKY_ERROR_TYPES = frozenset({"timeout", "connection_refused", "validation_error", "rate_limited"})


@job("demo.noop", queue="default")
async def noop(payload: dict[str, Any]) -> dict[str, Any]:
    # Deliberately does nothing: throughput benchmarks measure the queue, not the handler.
    return {"ok": True}


@job("demo.sleep", queue="default")
async def sleep(payload: dict[str, Any]) -> dict[str, Any]:
    ms = require_int(require_object(payload), "ms", 0, MAX_SLEEP_MS)
    await asyncio.sleep(ms / 1000)
    return {"sleptMs": ms}


@job("demo.flaky", queue="default")
async def flaky(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    payload = require_object(payload)
    fail_times = require_int(payload, "failTimes", 0, 1_000, default=0)
    fail_with = payload.get("failWith", "timeout")
    if fail_with not in FLAKY_ERROR_TYPES:
        raise invalid(f"failWith must be one of {sorted(FLAKY_ERROR_TYPES)}, got {fail_with!r}")
    # Count executions, not attempts: a rate-limited retry gives its attempt back, so counting
    # attempts would rate-limit forever.
    if ctx.execution <= fail_times:
        message = f"injected {fail_with} failure on run {ctx.execution} of {fail_times}"
        if fail_with == "rate_limited":
            # Rate limiting is the server telling us to back off, not a defect of this job, so
            # it should not eat into max_attempts.
            raise Retry(after=0.05, reason="rate limited", burn_attempt=False,
                        error_type="rate_limited")
        # Raised as a plain JobError even for validation_error: it exercises the worker's
        # non_retryable classification rather than bypassing it with Unrecoverable.
        raise JobError(message, error_type=fail_with)
    return {"attempt": ctx.attempt}


@job("demo.crash", queue="default")
def crash(payload: dict[str, Any]) -> NoReturn:
    # A signal targets the whole process, so this kills the worker even though sync handlers
    # run in a pool thread (sys.exit would only end the thread). SIGKILL cannot be caught, so
    # no cleanup runs: exactly the poison-pill scenario lease recovery must handle.
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable: SIGKILL was not delivered")
