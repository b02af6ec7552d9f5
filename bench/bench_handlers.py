"""Handlers the benchmark suite loads into its workers (``--app bench_handlers``)."""

from __future__ import annotations

import os
import time
from typing import Any

import redis.asyncio as aioredis

from jobline.worker.registry import job

_redis: aioredis.Redis | None = None


@job("bench.stamp", queue="idle")
async def stamp(payload: dict[str, Any]) -> dict[str, float]:
    # The handler's own start time, so idle latency includes dispatch, claim and the call itself.
    # It is also pushed to a Redis list the driver blocks on (as the peers' handlers do), so the
    # driver needs no polling that would compete for the 2 cores while a job is in flight.
    t = time.time()
    global _redis
    if _redis is None:
        _redis = aioredis.from_url(os.environ["REDIS_URL"])
    await _redis.rpush(f"{os.environ.get('JOBLINE_REDIS_PREFIX', 'jobline')}:bench:lat",
                       f"{payload['i']} {t}")
    return {"t": t}
