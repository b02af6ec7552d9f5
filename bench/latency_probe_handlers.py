"""Worker app for ``bench/latency_breakdown.py``: stamps each step of the idle path.

Profiling only. It wraps (at import, inside the worker process) the three calls between a
wake-up and a handler start so each claimed job reports when its worker woke, when its claim
started, when the Redis claim script answered and when the PostgreSQL claim committed. The
wrappers time the calls and change nothing else.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis.asyncio as aioredis

import jobline.worker.backend as backend
from jobline.shared import dispatch, jobs
from jobline.worker.registry import job

_t: dict[str, float] = {}
_redis: aioredis.Redis | None = None

_wait = dispatch.Dispatch.wait_for_work
_claim_script = dispatch.Dispatch.claim
_claim_batch = jobs.claim_batch


async def _timed_wait(self: dispatch.Dispatch, *a: Any, **k: Any) -> bool:
    r = await _wait(self, *a, **k)
    _t["woke"] = time.time()
    return r


async def _timed_claim_script(self: dispatch.Dispatch, *a: Any, **k: Any) -> Any:
    r = await _claim_script(self, *a, **k)
    _t["script_done"] = time.time()
    return r


async def _timed_claim_batch(*a: Any, **k: Any) -> jobs.ClaimResult:
    t0 = time.time()
    r = await _claim_batch(*a, **k)
    if r.jobs:  # the claim that got the job (empty claims after it would overwrite the stamps)
        _t.update(claim_started=t0, redis_claimed=_t["script_done"], pg_claimed=time.time(),
                  woke_before=_t.get("woke", 0.0))
    return r


dispatch.Dispatch.wait_for_work = _timed_wait  # type: ignore[method-assign]
dispatch.Dispatch.claim = _timed_claim_script  # type: ignore[method-assign]
backend.jobs.claim_batch = _timed_claim_batch  # type: ignore[attr-defined]


@job("bench.trace", queue="trace")
async def trace(payload: dict[str, Any]) -> None:
    started = time.time()
    global _redis
    if _redis is None:
        _redis = aioredis.from_url(os.environ["REDIS_URL"])
    await _redis.rpush(f"{os.environ.get('JOBLINE_REDIS_PREFIX', 'jobline')}:bench:trace",
                       " ".join(str(x) for x in (
                           payload["i"], _t["woke_before"], _t["claim_started"],
                           _t["redis_claimed"], _t["pg_claimed"], started)))
