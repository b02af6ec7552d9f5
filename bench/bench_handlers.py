"""Handlers the benchmark suite loads into its workers (``--app bench_handlers``)."""

from __future__ import annotations

import time
from typing import Any

from jobline.worker.registry import job


@job("bench.stamp", queue="idle")
async def stamp(payload: dict[str, Any]) -> dict[str, float]:
    # The handler's own start time, so idle latency includes dispatch, claim and the call itself.
    return {"t": time.time()}
