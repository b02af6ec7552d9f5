"""The monitoring reads the dashboard polls never scan ``jobs`` (issue 16): every statement
GET /api/v1/queues, the GraphQL queue and worker lists, /api/v1/metrics/* and /metrics run is
EXPLAINed, with its own arguments, over a store of many jobs; no plan may read a partition of
``jobs`` (or ``job_attempts``) sequentially."""

from __future__ import annotations

from typing import Any

import httpx

from jobline.shared.observe.workers import register_worker
from jobline.shared.platform.connections import Deps

JOBS = 100_000


async def many_jobs(deps: Deps) -> None:
    async with deps.pool.acquire() as c:
        await c.execute("SET jobline.events = 'off'")
        await c.execute(f"""
            INSERT INTO jobs (id, queue_name, job_type, payload, status, created_at, started_at,
                              scheduled_for, updated_at, lease_expires_at)
            SELECT gen_random_uuid(), 'q' || (g % 5), 't' || (g % 7), '{{}}',
                   (ARRAY['completed', 'completed', 'completed', 'dead_letter', 'pending',
                          'scheduled', 'processing'])[1 + g % 7],
                   now(), now(), now() + make_interval(secs => g % 100), now(), now()
              FROM generate_series(1, {JOBS}) g""")
        await c.execute("ANALYZE jobs")
        await c.execute("SELECT jobline_fold_queue_counts()")


async def record_statements(deps: Deps, seen: list[tuple[str, tuple[Any, ...]]]) -> None:
    """Log every query of every pool connection (all of them opened now, so none escapes)."""
    conns = [await deps.pool.acquire() for _ in range(deps.pool.get_max_size())]
    try:
        for c in conns:
            c.add_query_logger(lambda r: seen.append((r.query, tuple(r.args or ()))))
    finally:
        for c in conns:
            await deps.pool.release(c)


async def test_dashboard_polls_never_scan_jobs(deps: Deps, admin: httpx.AsyncClient) -> None:
    await many_jobs(deps)
    await register_worker(deps, {"id": "w1", "group": "default", "concurrency": 4,
                                 "running": 1}, 60_000)
    seen: list[tuple[str, tuple[Any, ...]]] = []
    await record_statements(deps, seen)
    r = await admin.get("/api/v1/queues")
    assert r.status_code == 200
    assert {q["name"] for q in r.json()["queues"]} >= {f"q{i}" for i in range(5)}
    assert sum(q["pending"] for q in r.json()["queues"]) == JOBS // 7 + (JOBS % 7 >= 5)
    for path in ("/api/v1/metrics/queues", "/api/v1/metrics/workers", "/metrics"):
        assert (await admin.get(path)).status_code == 200, path
    g = await admin.post("/graphql", json={"query": """{
        queues { name counts { pending } } workers { id } queueMetrics { name } }"""})
    assert g.status_code == 200 and "errors" not in g.json(), g.text
    assert len(g.json()["data"]["workers"]) == 1

    reads = [(q, a) for q, a in seen
             if q.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert any("jobs" in q for q, _ in reads)  # the oldest-pending probe, at least
    scans = []
    async with deps.pool.acquire() as c:
        for q, a in reads:
            plan = "\n".join(r[0] for r in await c.fetch("EXPLAIN " + q, *a))
            if "Seq Scan on jobs" in plan or "Seq Scan on job_attempts" in plan:
                scans.append(f"{q}\n{plan}")
    assert not scans, "\n\n".join(scans)
