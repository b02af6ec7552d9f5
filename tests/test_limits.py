"""Request limits not covered elsewhere: bulk size on batches, page size on the DLQ and audit
listings, payload size on batches and schedules; each refused naming its field, nothing stored.
(Jobs: test_api.py covers payload/bulk/page limits of /api/v1/jobs; per-key rate: test_key_rate.)"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest

from jobline.api.app import create_app
from jobline.shared.platform.connections import Deps
from jobline.testing import serve_app


@pytest.fixture
async def small(deps: Deps) -> AsyncIterator[httpx.AsyncClient]:
    s = deps.settings.with_(max_payload_bytes=100, max_bulk_jobs=3, max_page_size=5)
    async for http in serve_app(create_app(s, deps=dataclasses.replace(deps, settings=s))):
        yield http


def assert_field(resp: httpx.Response, status: int, field: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["field"] == field, resp.text


async def test_batch_limits(small: httpx.AsyncClient, deps: Deps) -> None:
    job = {"queue": "q", "jobType": "t"}
    assert_field(await small.post("/api/v1/job-batches", json={"name": "b", "jobs": [job] * 4}),
                 422, "jobs")
    big = {**job, "payload": {"blob": "x" * 200}}
    assert_field(await small.post("/api/v1/job-batches", json={"name": "b", "jobs": [job, big]}),
                 413, "jobs[1].payload")
    assert await deps.pool.fetchval("SELECT count(*) FROM jobs") == 0
    assert await deps.pool.fetchval("SELECT count(*) FROM job_batches") == 0
    ok = await small.post("/api/v1/job-batches", json={"name": "b", "jobs": [job] * 3})
    assert ok.status_code == 201, ok.text


async def test_schedule_payload_limit(small: httpx.AsyncClient, deps: Deps) -> None:
    resp = await small.post("/api/v1/scheduled-jobs", json={
        "name": "n", "queue": "q", "jobType": "t", "schedule": "* * * * *",
        "payload": {"blob": "x" * 200}})
    assert resp.status_code in (413, 422), resp.text
    assert resp.json()["error"]["field"] == "payload"
    assert await deps.pool.fetchval("SELECT count(*) FROM schedules") == 0


async def test_page_size_limits(small: httpx.AsyncClient) -> None:
    assert_field(await small.get("/api/v1/jobs", params={"pageSize": 6}), 422, "pageSize")
    assert_field(await small.get("/api/v1/admin/dlq", params={"pageSize": 6}), 422, "pageSize")
    assert_field(await small.get("/api/v1/audit", params={"limit": 6}), 422, "limit")
    for path, p in (("/api/v1/jobs", "pageSize"), ("/api/v1/admin/dlq", "pageSize"),
                    ("/api/v1/audit", "limit")):
        assert (await small.get(path, params={p: 5})).status_code == 200
