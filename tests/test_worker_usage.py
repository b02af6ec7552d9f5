"""Workers report their process CPU and memory in their heartbeats (the dashboard's Workers
page, the workers API and GraphQL read them from the registry)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from jobline.shared.observe import monitoring
from jobline.shared.observe.workers import ProcessUsage, rss_bytes
from jobline.shared.platform.connections import Deps
from jobline.testing import wait_until
from jobline.worker.registry import Registry
from jobline.worker.runtime import Worker


def test_process_usage_is_cpu_time_over_wall_time_and_current_rss() -> None:
    u = ProcessUsage()
    first = u.sample()
    assert first["cpuPercent"] is None  # nothing to compare with yet
    start = sum(os.times()[:2])
    while sum(os.times()[:2]) <= start:  # burn CPU until the clock's tick registers it
        sum(i * i for i in range(10_000))
    second = u.sample()
    assert second["cpuPercent"] is not None and second["cpuPercent"] > 0
    rss = rss_bytes()
    assert rss is not None and rss > 1024 * 1024  # a Python process holds more than 1 MiB
    assert first["rssBytes"] is not None and first["rssBytes"] > 1024 * 1024


async def test_heartbeats_carry_cpu_and_memory_to_the_workers_listing(deps: Deps) -> None:
    worker = Worker(deps, Registry(), concurrency=1, heartbeat_ms=100)
    task = asyncio.create_task(worker.run())
    try:
        found: list[dict[str, Any]] = []

        async def reported() -> bool:
            found[:] = [w for w in await monitoring.worker_metrics(deps)
                        if w["id"] == worker.worker_id and w["cpuPercent"] is not None]
            return bool(found)

        await wait_until(reported, message="a heartbeat with CPU use")
        (w,) = found
        assert w["cpuPercent"] >= 0 and w["rssBytes"] > 1024 * 1024
    finally:
        worker.request_stop()
        await task
