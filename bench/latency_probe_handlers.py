"""Worker app for ``bench/latency_breakdown.py``: stamps each step of the idle path.

Profiling only. It wraps (at import, inside the worker process) the calls between a wake-up and
a handler start so each claimed job reports when the Redis half of its claim answered (for an
idle worker: the wait and the claim script in one round trip) and when the PostgreSQL half
committed. The wrappers time the calls and change nothing else.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis.asyncio as aioredis

from jobline.shared.core import jobs
from jobline.shared.dispatch import redis_dispatch as dispatch
from jobline.worker.registry import job

_t: dict[str, float] = {}
_redis: aioredis.Redis | None = None

_wait_and_claim = dispatch.Dispatch.wait_and_claim
_claim_script = dispatch.Dispatch.claim
_claim_popped = jobs._claim_popped


async def _timed_wait_and_claim(self: dispatch.Dispatch, *a: Any, **k: Any) -> Any:
    r = await _wait_and_claim(self, *a, **k)
    _t["script_done"] = time.time()
    return r


async def _timed_claim_script(self: dispatch.Dispatch, *a: Any, **k: Any) -> Any:
    r = await _claim_script(self, *a, **k)
    _t["script_done"] = time.time()
    return r


async def _timed_claim_popped(*a: Any, **k: Any) -> jobs.ClaimResult:
    r = await _claim_popped(*a, **k)
    _t.update(redis_claimed=_t["script_done"], pg_claimed=time.time())
    return r


dispatch.Dispatch.wait_and_claim = _timed_wait_and_claim  # type: ignore[method-assign]
dispatch.Dispatch.claim = _timed_claim_script  # type: ignore[method-assign]
jobs._claim_popped = _timed_claim_popped


@job("bench.trace", queue="trace")
async def trace(payload: dict[str, Any]) -> None:
    started = time.time()
    global _redis
    if _redis is None:
        _redis = aioredis.from_url(os.environ["REDIS_URL"])
    await _redis.rpush(f"{os.environ.get('JOBLINE_REDIS_PREFIX', 'jobline')}:bench:trace",
                       " ".join(str(x) for x in (
                           payload["i"], _t["redis_claimed"], _t["pg_claimed"], started)))
