"""The zoomed-out Gantt: started jobs per lane and time slice (monitoring.timeline_density and
GraphQL jobTimelineDensity), over the window's id range."""

from __future__ import annotations

import httpx
import pytest

from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome
from jobline.shared.observe import monitoring
from jobline.shared.platform.clock import FakeClock
from jobline.shared.platform.connections import Deps

T0 = 1_800_000_000_000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


async def start(deps: Deps, clock: FakeClock, queue: str, worker: str, at: int, ok: bool) -> None:
    """A job submitted at ``at`` ms after T0 and started right then by ``worker``, finished 5 ms
    later (completed or failed)."""
    clock.set(T0 + at)
    await jobs.submit(deps, JobSpec(queue, "t", {}, max_attempts=1))
    (c,) = await jobs.claim(deps, worker, [queue], 1)
    clock.advance(5)
    if ok:
        await jobs.complete(deps, [Outcome(c.id, c.token, True, None)])
    else:
        await jobs.fail(deps, [Outcome(c.id, c.token, False, error="x", error_type="X")],
                        [c.attempt])


async def test_density_counts_started_jobs_per_lane_and_slice(deps: Deps, clock: FakeClock,
                                                              admin: httpx.AsyncClient) -> None:
    await start(deps, clock, "qa", "w1", 100, True)       # slice 0
    await start(deps, clock, "qa", "w1", 900, False)      # slice 0, failed
    await start(deps, clock, "qb", "w2", 1_500, True)     # slice 1
    await start(deps, clock, "qa", "w2", 3_999, True)     # slice 3
    await start(deps, clock, "qa", "w1", 4_000, True)     # created at the window's end: out
    d = await monitoring.timeline_density(deps, T0, T0 + 4_000, buckets=4)
    assert d["bucketMs"] == 1000
    assert [(c["lane"], c["bucket"], c["jobs"], c["failed"]) for c in d["cells"]] == [
        ("w1", 0, 2, 1), ("w2", 1, 1, 0), ("w2", 3, 1, 0)]
    by_queue = await monitoring.timeline_density(deps, T0, T0 + 4_000, buckets=4,
                                                 by_worker=False, queue="qa")
    assert [(c["lane"], c["bucket"], c["jobs"]) for c in by_queue["cells"]] == [
        ("qa", 0, 2), ("qa", 3, 1)]
    g = (await admin.post("/graphql", json={"query": """query($f: DateTime, $t: DateTime) {
        jobTimelineDensity(from: $f, to: $t, lanes: "queue", buckets: 2) {
          bucketMs cells { lane bucket jobs failed } } }""", "variables": {
        "f": "2027-01-15T08:00:00Z", "t": "2027-01-15T08:00:04Z"}})).json()
    assert g["data"]["jobTimelineDensity"] == {"bucketMs": 2000, "cells": [
        {"lane": "qa", "bucket": 0, "jobs": 2, "failed": 1},
        {"lane": "qa", "bucket": 1, "jobs": 1, "failed": 0},
        {"lane": "qb", "bucket": 0, "jobs": 1, "failed": 0}]}
    for bad in ('buckets: 0', 'lanes: "host"'):
        r = (await admin.post("/graphql", json={
            "query": f"{{ jobTimelineDensity({bad}) {{ bucketMs }} }}"})).json()
        assert r["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", r
