"""The REST API against real PostgreSQL + Valkey: every route, every error class, group commit."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from jobline.api import schemas
from jobline.api.app import create_app
from jobline.api.errors import EXCEPTION_HANDLERS, endpoint
from jobline.shared.core import jobs
from jobline.shared.core.group_commit import GroupCommitter
from jobline.shared.core.jobs import SubmitResult
from jobline.shared.core.models import JobSpec, Outcome, Status
from jobline.shared.dispatch.redis_dispatch import Dispatch
from jobline.shared.platform.clock import SYSTEM_CLOCK
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, create_pool, create_redis
from jobline.shared.platform.errors import Unavailable, ValidationFailed
from jobline.testing import serve_app

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


# --- fixtures ----------------------------------------------------------------------------------


async def count_jobs(deps: Deps) -> int:
    n = await deps.pool.fetchval("SELECT count(*) FROM jobs")
    assert isinstance(n, int)
    return n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def assert_error(resp: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"}
    schemas.ErrorOut.model_validate(body)
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    if field is not None:
        assert body["error"].get("field") == field, body


async def submit(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("jobType", "send_email")
    body.setdefault("payload", {"to": "a@example.com"})
    resp = await http.post("/api/v1/jobs", json=body)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def claim_one(deps: Deps, queue: str = "default") -> tuple[uuid.UUID, int]:
    (claimed,) = await jobs.claim(deps, "worker-1", [queue], 1)
    return claimed.id, claimed.token


# --- submit and read ---------------------------------------------------------------------------


async def test_submit_then_get_returns_the_seed_columns(http: httpx.AsyncClient) -> None:
    resp = await http.post("/api/v1/jobs", json={
        "queue": "email", "jobType": "send_welcome_email",
        "payload": {"userId": 123, "email": "user@example.com"}, "priority": 7,
        "maxAttempts": 4, "timeoutMs": 5000, "idempotencyKey": "welcome-123",
        "backoff": {"baseMs": 100, "factor": 3, "capMs": 10_000, "jitter": False}})
    assert resp.status_code == 201, resp.text
    sub = resp.json()
    schemas.SubmittedOut.model_validate(sub)
    assert sub["status"] == "pending" and sub["queuePosition"] == 1 and sub["duplicate"] is False

    resp = await http.get(f"/api/v1/jobs/{sub['jobId']}")
    assert resp.status_code == 200
    job = resp.json()
    schemas.JobOut.model_validate(job)
    assert job["id"] == sub["jobId"]
    assert (job["queue"], job["jobType"], job["status"]) == ("email", "send_welcome_email",
                                                            "pending")
    assert job["payload"] == {"userId": 123, "email": "user@example.com"}
    assert (job["priority"], job["attempts"], job["maxAttempts"]) == (7, 0, 4)
    assert (job["timeoutMs"], job["idempotencyKey"]) == (5000, "welcome-123")
    assert job["result"] is None and job["error"] is None and job["errorType"] is None
    assert job["startedAt"] is None and job["completedAt"] is None and job["workerId"] is None
    assert ISO_MS.match(job["createdAt"]) and ISO_MS.match(job["scheduledFor"])
    assert job["attemptHistory"] == []


async def test_defaults_queue_priority_and_max_attempts(http: httpx.AsyncClient,
                                                        deps: Deps) -> None:
    sub = await submit(http)
    job = (await http.get(f"/api/v1/jobs/{sub['jobId']}")).json()
    assert (job["queue"], job["priority"]) == ("default", 5)
    assert job["maxAttempts"] == deps.settings.default_max_attempts


async def test_delayed_jobs_have_no_queue_position(http: httpx.AsyncClient) -> None:
    delayed = await submit(http, delayMs=60_000)
    assert (delayed["status"], delayed["queuePosition"]) == ("scheduled", None)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    scheduled = await submit(http, scheduledFor=later)
    assert (scheduled["status"], scheduled["queuePosition"]) == ("scheduled", None)
    job = (await http.get(f"/api/v1/jobs/{scheduled['jobId']}")).json()
    assert job["scheduledFor"].startswith(later[:16])
    # A time in the past is simply due now.
    past = await submit(http, scheduledFor="2020-01-01T00:00:00+02:00")
    assert past["status"] == "pending" and past["queuePosition"] == 1


async def test_queue_position_follows_priority_then_fifo(http: httpx.AsyncClient) -> None:
    first = await submit(http, priority=5)
    second = await submit(http, priority=5)
    urgent = await submit(http, priority=9)
    assert (first["queuePosition"], second["queuePosition"]) == (1, 2)
    assert urgent["queuePosition"] == 1


async def test_duplicate_idempotency_key_returns_existing_job(http: httpx.AsyncClient,
                                                              deps: Deps) -> None:
    first = await submit(http, idempotencyKey="order-1")
    # the same job again (a different type or payload is a 409: tests/test_errors.py)
    resp = await http.post("/api/v1/jobs", json={"jobType": "send_email",
                                                 "payload": {"to": "a@example.com"},
                                                 "idempotencyKey": "order-1"})
    assert resp.status_code == 200
    dup = resp.json()
    assert dup["jobId"] == first["jobId"] and dup["duplicate"] is True
    assert dup["queuePosition"] is None
    assert await count_jobs(deps) == 1


async def test_concurrent_submits_with_one_key_make_one_job(http: httpx.AsyncClient,
                                                            deps: Deps) -> None:
    body = {"jobType": "charge", "payload": {"amount": 5}, "idempotencyKey": "pay-42"}
    a, b = await asyncio.gather(http.post("/api/v1/jobs", json=body),
                                http.post("/api/v1/jobs", json=body))
    assert sorted([a.status_code, b.status_code]) == [200, 201]
    assert a.json()["jobId"] == b.json()["jobId"]
    assert await count_jobs(deps) == 1


async def test_concurrent_http_submits_all_stored(http: httpx.AsyncClient, deps: Deps) -> None:
    resps = await asyncio.gather(*(http.post("/api/v1/jobs", json={
        "jobType": "t", "payload": {"i": i}}) for i in range(50)))
    assert all(r.status_code == 201 for r in resps)
    assert len({r.json()["jobId"] for r in resps}) == 50
    assert await count_jobs(deps) == 50


# --- list --------------------------------------------------------------------------------------


async def test_list_filters_pages_and_cursor(http: httpx.AsyncClient) -> None:
    ids = [(await submit(http, queue="email", jobType="mail"))["jobId"] for _ in range(5)]
    await submit(http, queue="reports", jobType="report")
    resp = await http.get("/api/v1/jobs", params={"queue": "email", "pageSize": 2})
    assert resp.status_code == 200
    page1 = resp.json()
    schemas.JobListOut.model_validate(page1)
    assert (page1["page"], page1["pageSize"], page1["total"]) == (1, 2, 5)
    assert [j["id"] for j in page1["jobs"]] == ids[::-1][:2]  # newest first
    assert "attemptHistory" not in page1["jobs"][0]

    page2 = (await http.get("/api/v1/jobs", params={"queue": "email", "pageSize": 2,
                                                    "page": 2})).json()
    assert [j["id"] for j in page2["jobs"]] == ids[::-1][2:4]
    by_cursor = (await http.get("/api/v1/jobs", params={
        "queue": "email", "pageSize": 2, "cursor": page1["nextCursor"]})).json()
    assert [j["id"] for j in by_cursor["jobs"]] == ids[::-1][2:4]

    reports = (await http.get("/api/v1/jobs", params={"jobType": "report"})).json()
    assert [j["queue"] for j in reports["jobs"]] == ["reports"]
    assert reports["nextCursor"] is None
    pending = (await http.get("/api/v1/jobs", params={"status": "pending"})).json()
    assert pending["total"] == 6
    none = (await http.get("/api/v1/jobs", params={"status": "completed"})).json()
    assert none["jobs"] == [] and none["total"] == 0


async def test_list_rejects_bad_query(http: httpx.AsyncClient, deps: Deps) -> None:
    too_big = deps.settings.max_page_size + 1
    assert_error(await http.get("/api/v1/jobs", params={"pageSize": too_big}),
                 422, "validation_error", "pageSize")
    assert_error(await http.get("/api/v1/jobs", params={"pageSize": 0}),
                 422, "validation_error", "pageSize")
    assert_error(await http.get("/api/v1/jobs", params={"page": "x"}),
                 422, "validation_error", "page")
    assert_error(await http.get("/api/v1/jobs", params={"status": "sleeping"}),
                 422, "validation_error", "status")
    assert_error(await http.get("/api/v1/jobs", params={"cursor": "nope"}),
                 422, "validation_error", "cursor")


# --- cancel and retry --------------------------------------------------------------------------


async def test_cancel_pending_job_then_conflict(http: httpx.AsyncClient, deps: Deps) -> None:
    sub = await submit(http)
    resp = await http.delete(f"/api/v1/jobs/{sub['jobId']}")
    assert resp.status_code == 200
    assert resp.json() == {"jobId": sub["jobId"], "status": "cancelled"}
    assert (await http.get(f"/api/v1/jobs/{sub['jobId']}")).json()["status"] == "cancelled"
    assert_error(await http.delete(f"/api/v1/jobs/{sub['jobId']}"), 409, "conflict")
    # Cancelled means never dispatched: nothing left to claim.
    assert await jobs.claim(deps, "w", ["default"], 1) == []


async def test_cancel_completed_job_is_a_conflict(http: httpx.AsyncClient, deps: Deps) -> None:
    sub = await submit(http)
    job_id, token = await claim_one(deps)
    assert str(job_id) == sub["jobId"]
    report = await jobs.complete(deps, [Outcome(id=job_id, token=token, ok=True,
                                                result={"sent": True})])
    assert report.accepted == [job_id]
    assert_error(await http.delete(f"/api/v1/jobs/{job_id}"), 409, "conflict")
    job = (await http.get(f"/api/v1/jobs/{job_id}")).json()
    assert job["status"] == "completed" and job["result"] == {"sent": True}
    assert job["attempts"] == 1 and job["workerId"] == "worker-1"
    assert ISO_MS.match(job["startedAt"]) and ISO_MS.match(job["completedAt"])
    (attempt,) = job["attemptHistory"]
    assert (attempt["attempt"], attempt["outcome"], attempt["workerId"]) == (1, "completed",
                                                                              "worker-1")
    schemas.JobOut.model_validate(job)


async def test_retry_failed_job(http: httpx.AsyncClient, deps: Deps) -> None:
    sub = await submit(http)
    assert_error(await http.post(f"/api/v1/jobs/{sub['jobId']}/retry"), 409, "conflict")
    job_id, token = await claim_one(deps)
    await jobs.fail(deps, [Outcome(id=job_id, token=token, ok=False, error="smtp down",
                                   error_type="connection_refused", final=True)], [1])
    failed = (await http.get(f"/api/v1/jobs/{job_id}")).json()
    assert (failed["status"], failed["error"], failed["errorType"]) == (
        "dead_letter", "smtp down", "connection_refused")
    resp = await http.post(f"/api/v1/jobs/{job_id}/retry")
    assert resp.status_code == 200
    assert resp.json() == {"jobId": str(job_id), "status": "pending"}
    again, _ = await claim_one(deps)
    assert again == job_id


async def test_unknown_and_malformed_ids_are_404(http: httpx.AsyncClient) -> None:
    unknown = uuid.uuid4()
    for resp in [await http.get(f"/api/v1/jobs/{unknown}"),
                 await http.delete(f"/api/v1/jobs/{unknown}"),
                 await http.post(f"/api/v1/jobs/{unknown}/retry"),
                 await http.get("/api/v1/jobs/not-a-uuid"),
                 await http.delete("/api/v1/jobs/not-a-uuid"),
                 await http.post("/api/v1/jobs/not-a-uuid/retry")]:
        assert_error(resp, 404, "not_found")


# --- bulk --------------------------------------------------------------------------------------


async def test_bulk_submit(http: httpx.AsyncClient, deps: Deps) -> None:
    items: list[dict[str, Any]] = [{"jobType": "resize", "queue": "images", "payload": {"n": i}}
                                   for i in range(3)]
    items.append({"jobType": "resize", "queue": "images", "payload": {}, "delayMs": 1000})
    items.append({"jobType": "resize", "queue": "images", "payload": {},
                  "idempotencyKey": "k1"})
    items.append({"jobType": "resize", "queue": "images", "payload": {},
                  "idempotencyKey": "k1"})
    resp = await http.post("/api/v1/jobs/bulk", json={"jobs": items})
    assert resp.status_code == 201, resp.text
    out = resp.json()
    schemas.BulkSubmittedOut.model_validate(out)
    got = out["jobs"]
    assert [j["queuePosition"] for j in got[:3]] == [1, 2, 3]
    assert (got[3]["status"], got[3]["queuePosition"]) == ("scheduled", None)
    assert got[5]["jobId"] == got[4]["jobId"] and got[5]["duplicate"] is True
    assert await count_jobs(deps) == 5


async def test_bulk_is_all_or_nothing(http: httpx.AsyncClient, deps: Deps) -> None:
    good = {"jobType": "t", "payload": {}}
    jobs_ = [good, good, good, {**good, "priority": 11}, good]
    assert_error(await http.post("/api/v1/jobs/bulk", json={"jobs": jobs_}),
                 422, "validation_error", "jobs[3].priority")
    unknown_field = [good, {**good, "colour": "red"}]
    assert_error(await http.post("/api/v1/jobs/bulk", json={"jobs": unknown_field}),
                 422, "validation_error", "jobs[1].colour")
    bad_backoff = [good, good, {**good, "backoff": {"baseMs": -1}}]
    assert_error(await http.post("/api/v1/jobs/bulk", json={"jobs": bad_backoff}),
                 422, "validation_error", "jobs[2].backoff.baseMs")
    assert_error(await http.post("/api/v1/jobs/bulk", json={"jobs": []}),
                 422, "validation_error", "jobs")
    assert_error(await http.post("/api/v1/jobs/bulk", json={"jobs": [good], "x": 1}),
                 422, "validation_error", "x")
    assert await count_jobs(deps) == 0


async def test_bulk_payload_too_large_names_item(deps: Deps) -> None:
    small = deps.settings.with_(max_payload_bytes=100, max_bulk_jobs=3)
    # Same connections, smaller limits (the core reads its limits from deps.settings).
    async for http in serve_app(create_app(small, deps=dataclasses.replace(deps, settings=small))):
        good = {"jobType": "t", "payload": {}}
        big = {"jobType": "t", "payload": {"blob": "x" * 200}}
        assert_error(await http.post("/api/v1/jobs/bulk", json={"jobs": [good, big]}),
                     413, "payload_too_large", "jobs[1].payload")
        assert_error(await http.post("/api/v1/jobs/bulk", json={"jobs": [good] * 4}),
                     422, "validation_error", "jobs")
        assert_error(await http.post("/api/v1/jobs", json=big),
                     413, "payload_too_large", "payload")
    assert await count_jobs(deps) == 0


# --- request errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "field"), [
    ({"payload": {}}, "jobType"),
    ({"jobType": "t", "priority": 11}, "priority"),
    ({"jobType": "t", "priority": -1}, "priority"),
    ({"jobType": "t", "priority": "5"}, "priority"),
    ({"jobType": "t", "priority": True}, "priority"),
    ({"jobType": "t", "priority": 5.5}, "priority"),
    ({"jobType": "t", "maxAttempts": 0}, "maxAttempts"),
    ({"jobType": "t", "timeoutMs": 0}, "timeoutMs"),
    ({"jobType": "t", "delayMs": -5}, "delayMs"),
    ({"jobType": "t", "payload": [1, 2]}, "payload"),
    ({"jobType": "t", "payload": {"s": "nul\u0000byte"}}, "payload"),
    ({"jobType": "t", "queue": "bad queue"}, "queue"),
    ({"jobType": "t", "queue": "q\n"}, "queue"),
    ({"jobType": "1starts-with-digit"}, "jobType"),
    ({"jobType": "t", "scheduledFor": "2026-01-01T00:00:00"}, "scheduledFor"),
    ({"jobType": "t", "scheduledFor": "tomorrow"}, "scheduledFor"),
    ({"jobType": "t", "scheduledFor": 0}, "scheduledFor"),
    ({"jobType": "t", "scheduledFor": "2026-01-01T00:00:00Z", "delayMs": 5}, "delayMs"),
    ({"jobType": "t", "idempotencyKey": ""}, "idempotencyKey"),
    ({"jobType": "t", "backoff": {"factor": 0.5}}, "backoff.factor"),
    ({"jobType": "t", "backoff": {"bogus": 1}}, "backoff.bogus"),
    ({"jobType": "t", "queue_name": "x"}, "queue_name"),
    ([{"jobType": "t"}], "body"),
])
async def test_invalid_submission_is_422_naming_the_field(
        http: httpx.AsyncClient, deps: Deps, body: Any, field: str) -> None:
    assert_error(await http.post("/api/v1/jobs", json=body), 422, "validation_error", field)
    assert await count_jobs(deps) == 0


async def test_malformed_json_is_400_and_stores_nothing(http: httpx.AsyncClient,
                                                        deps: Deps) -> None:
    for raw in [b'{"jobType": "t",', b"", b"not json", b'{"jobType": NaN}',
                b'{"jobType": "\\ud800"}']:
        resp = await http.post("/api/v1/jobs", content=raw,
                               headers={"content-type": "application/json"})
        assert_error(resp, 400, "bad_request")
        resp = await http.post("/api/v1/jobs/bulk", content=raw)
        assert_error(resp, 400, "bad_request")
    assert await count_jobs(deps) == 0


async def test_oversized_body_is_413_before_parsing(http: httpx.AsyncClient, deps: Deps) -> None:
    # Not even JSON: the size check must come first.
    raw = b"x" * (max(deps.settings.max_payload_bytes * 2, 1024 * 1024) + 1)
    assert_error(await http.post("/api/v1/jobs", content=raw), 413, "payload_too_large", "body")
    big = {"jobType": "t", "payload": {"blob": "x" * (deps.settings.max_payload_bytes + 1)}}
    assert_error(await http.post("/api/v1/jobs", json=big), 413, "payload_too_large", "payload")
    assert await count_jobs(deps) == 0


async def test_unknown_route_and_method_use_the_error_shape(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/api/v1/nothing"), 404, "not_found")
    resp = await http.put("/api/v1/jobs")
    assert_error(resp, 405, "method_not_allowed")
    assert set(resp.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    resp = await http.get("/api/v1/jobs/bulk")  # not a job id: the bulk route, POST only
    assert_error(resp, 405, "method_not_allowed")
    assert resp.headers["allow"] == "POST"
    resp = await http.post(f"/api/v1/jobs/{uuid.uuid4()}")
    assert set(resp.headers["allow"].split(", ")) == {"GET", "HEAD", "DELETE"}


# --- queues, health, availability ------------------------------------------------------------


async def test_queues(http: httpx.AsyncClient, deps: Deps) -> None:
    await submit(http, queue="email")
    await submit(http, queue="email")
    await submit(http, queue="reports", delayMs=60_000)
    job_id, token = await claim_one(deps, "email")
    await jobs.complete(deps, [Outcome(id=job_id, token=token, ok=True)])
    resp = await http.get("/api/v1/queues")
    assert resp.status_code == 200
    body = resp.json()
    schemas.QueuesOut.model_validate(body)
    by_name = {q["name"]: q for q in body["queues"]}
    assert (by_name["email"]["pending"], by_name["email"]["completed"]) == (1, 1)
    assert by_name["email"]["ready"] == 1
    assert (by_name["reports"]["scheduled"], by_name["reports"]["delayed"]) == (1, 1)


async def test_health_and_readiness(http: httpx.AsyncClient) -> None:
    resp = await http.get("/healthz")
    assert (resp.status_code, resp.json()) == (200, {"status": "ok"})
    resp = await http.get("/readyz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "postgres": "ok", "redis": "ok"}


async def _deps_at(settings: Settings, *, pg_dsn: str, redis_url: str) -> Deps:
    # min_size=0: the pool connects lazily, so it can be built against a server that is down.
    pool = await create_pool(pg_dsn, min_size=0, max_size=2)
    r = create_redis(redis_url)
    return Deps(pool=pool, redis=r, dispatch=Dispatch(r, settings.redis_prefix),
                clock=SYSTEM_CLOCK, settings=settings)


async def test_unreachable_stores_give_503(settings: Settings) -> None:
    dead = await _deps_at(settings, pg_dsn=f"postgresql://x@127.0.0.1:{free_port()}/x",
                          redis_url=f"redis://127.0.0.1:{free_port()}/0")
    try:
        # no key can be created on a dead database: present one, its lookup meets the outage
        async for http in serve_app(create_app(settings, deps=dead), role=None):
            http.headers["X-Api-Key"] = "jl_some-key"
            resp = await http.get(f"/api/v1/jobs/{uuid.uuid4()}")
            assert_error(resp, 503, "unavailable")
            assert int(resp.headers["retry-after"]) >= 1
            resp = await http.post("/api/v1/jobs", json={"jobType": "t", "payload": {}})
            assert_error(resp, 503, "unavailable")
            assert "retry-after" in resp.headers
            assert_error(await http.get("/api/v1/queues"), 503, "unavailable")
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            body = ready.json()
            assert body["status"] == "unavailable"
            assert body["postgres"].startswith("down") and body["redis"].startswith("down")
            assert (await http.get("/healthz")).status_code == 200  # liveness stays up
    finally:
        await dead.close()


async def test_readiness_names_redis_when_only_redis_is_down(settings: Settings) -> None:
    assert settings.database_url is not None
    half = await _deps_at(settings, pg_dsn=settings.database_url,
                          redis_url=f"redis://127.0.0.1:{free_port()}/0")
    try:
        async for http in serve_app(create_app(settings, deps=half)):
            body = (await http.get("/readyz")).json()
            assert (body["postgres"], body["redis"][:4]) == ("ok", "down")
            # Postgres is the truth: a submit still succeeds and reconcile dispatches later.
            resp = await http.post("/api/v1/jobs", json={"jobType": "t", "payload": {}})
            assert resp.status_code == 201
            assert resp.json()["queuePosition"] is None
    finally:
        await half.close()


async def test_error_mapping_for_unavailable_and_unexpected(
        caplog: pytest.LogCaptureFixture) -> None:
    @endpoint
    async def unavailable(request: Request) -> Response:
        raise Unavailable("redis unavailable: ConnectionError", retry_after_s=3)

    @endpoint
    async def broken(request: Request) -> Response:
        raise RuntimeError("secret internals")

    app = Starlette(routes=[Route("/u", unavailable), Route("/b", broken)],
                    exception_handlers=EXCEPTION_HANDLERS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as http:
        resp = await http.get("/u")
        assert_error(resp, 503, "unavailable")
        assert resp.headers["retry-after"] == "3"
        with caplog.at_level(logging.ERROR, logger="jobline.api"):
            resp = await http.get("/b")
        assert resp.status_code == 500
        assert resp.json() == {"error": {"code": "internal", "message": "internal error"}}
        assert "secret internals" not in resp.text
        assert any(r.exc_info and "secret internals" in str(r.exc_info[1])
                   for r in caplog.records)


# --- OpenAPI -----------------------------------------------------------------------------------


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


async def test_openapi_covers_every_route(http: httpx.AsyncClient, deps: Deps) -> None:
    resp = await http.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["openapi"].startswith("3.1")
    app = create_app(deps.settings, deps=deps)
    for route in app.routes:
        if isinstance(route, WebSocketRoute):
            continue  # GraphQL subscriptions: documented under /graphql
        assert isinstance(route, Route)
        path = route.path.replace(":uuid}", "}")  # the doc spells no path convertors
        methods = (route.methods or set()) - {"HEAD"}
        for method in methods:
            assert method.lower() in doc["paths"][path], (method, path)
        documented = {m.upper() for m in doc["paths"][path]}
        assert documented == methods, path
    assert "$defs" not in resp.text  # hoisted into components
    names = set(doc["components"]["schemas"])
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in names
    bulk = doc["components"]["schemas"]["BulkSubmitIn"]["properties"]["jobs"]
    assert bulk["maxItems"] == deps.settings.max_bulk_jobs
    params = {p["name"]: p for p in doc["paths"]["/api/v1/jobs"]["get"]["parameters"]}
    assert params["pageSize"]["schema"]["maximum"] == deps.settings.max_page_size
    submit_schema = doc["components"]["schemas"]["SubmitJobIn"]
    assert submit_schema["additionalProperties"] is False
    assert {"jobType", "payload", "priority", "scheduledFor", "delayMs",
            "idempotencyKey", "backoff"} <= set(submit_schema["properties"])


# --- group commit ------------------------------------------------------------------------------


def _spec(i: int, **kw: Any) -> JobSpec:
    return JobSpec(queue="gc", job_type="t", payload={"i": i}, **kw)


async def test_group_commit_batches_concurrent_submits(deps: Deps) -> None:
    async with GroupCommitter(deps) as gc:
        results = await asyncio.gather(*(gc.submit(_spec(i)) for i in range(200)))
    assert await count_jobs(deps) == 200
    assert len({r.submitted.id for r in results}) == 200
    assert gc.flushed_specs == 200
    assert gc.flushes < 200, gc.flushes
    # Each caller got its own row back, and the positions form the queue order.
    rows = await deps.pool.fetch("SELECT id, payload FROM jobs")
    payload_of = {r["id"]: r["payload"]["i"] for r in rows}
    assert [payload_of[r.submitted.id] for r in results] == list(range(200))
    assert sorted(r.queue_position or 0 for r in results) == list(range(1, 201))


async def test_group_commit_isolates_a_bad_spec(deps: Deps) -> None:
    async with GroupCommitter(deps) as gc:
        outcomes = await asyncio.gather(
            *(gc.submit(_spec(i)) for i in range(10)),
            gc.submit(_spec(99, priority=42)),  # fails its own validation up front
            # jsonb cannot store NUL: refused by the core's validation, alone
            gc.submit(JobSpec(queue="gc", job_type="t", payload={"s": "\x00"})),
            *(gc.submit(_spec(i)) for i in range(10, 20)),
            return_exceptions=True)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 2
    assert isinstance(outcomes[10], ValidationFailed) and outcomes[10].field == "priority"
    assert isinstance(outcomes[11], ValidationFailed) and outcomes[11].field == "payload"
    assert await count_jobs(deps) == 20


async def test_group_commit_max_batch_and_close_flushes(deps: Deps) -> None:
    gc = GroupCommitter(deps, max_batch=7, max_inflight=2)
    gc.start()
    # gather starts its tasks in order: every submit has enqueued before aclose begins, so
    # aclose must flush all 30 (in batches of at most 7).
    *results, _ = await asyncio.gather(*(gc.submit(_spec(i)) for i in range(30)), gc.aclose())
    assert len({r.submitted.id for r in results if r is not None}) == 30
    assert gc.flushes >= 5
    assert await count_jobs(deps) == 30
    with pytest.raises(Unavailable):
        await gc.submit(_spec(0))


async def test_group_commit_dedupes_concurrent_idempotency_keys(deps: Deps) -> None:
    async with GroupCommitter(deps) as gc:
        a, b = await asyncio.gather(gc.submit(_spec(1, idempotency_key="same")),
                                    gc.submit(_spec(1, idempotency_key="same")))
    assert a.submitted.id == b.submitted.id
    assert sorted([a.submitted.duplicate, b.submitted.duplicate]) == [False, True]
    assert await count_jobs(deps) == 1
    assert Status(a.submitted.status) is Status.PENDING


async def test_group_commit_confines_an_idempotency_conflict_to_its_caller(deps: Deps) -> None:
    """Two callers in one flush, one key, different payloads: the first stores its job, the
    other alone gets the 409 (the flush is retried per caller), nobody else is affected."""
    async with GroupCommitter(deps) as gc:
        a, b, c = await asyncio.gather(gc.submit(_spec(1, idempotency_key="same")),
                                       gc.submit(_spec(2, idempotency_key="same")),
                                       gc.submit(_spec(3)), return_exceptions=True)
    assert isinstance(c, SubmitResult)
    outcomes = sorted(type(r).__name__ for r in (a, b))
    assert outcomes == ["IdempotencyConflict", "SubmitResult"], (a, b)
    assert await count_jobs(deps) == 2


# --- the submit fast lane ----------------------------------------------------------------------


async def test_submit_fast_lane_keeps_auth_errors_and_the_router_for_everything_else(
        settings: Settings, deps: Deps, monkeypatch: pytest.MonkeyPatch) -> None:
    """POST /api/v1/jobs skips the router (jobline/api/fastlane.py); it must still sit behind
    authentication, answer errors in the same shape, and leave every other request alone."""
    from jobline.api import fastlane
    from jobline.api import jobs as api_jobs

    calls: list[str] = []
    real = api_jobs.submit_job

    async def counted(request: Request) -> Response:
        calls.append(request.url.path)
        return await real(request)

    monkeypatch.setattr(api_jobs, "submit_job", counted)
    app = create_app(settings, deps=deps)
    async for http in serve_app(app, role=None):
        r = await http.post("/api/v1/jobs", json={"jobType": "demo.noop"})
        assert r.status_code == 401 and calls == []  # refused before the lane
    async for http in serve_app(app):
        r = await http.post("/api/v1/jobs", json={"jobType": "demo.noop", "payload": {"a": 1}})
        assert r.status_code == 201, r.text
        assert calls == ["/api/v1/jobs"]
        job_id = r.json()["jobId"]
        assert (await deps.pool.fetchval("SELECT status FROM jobs WHERE id = $1",
                                         uuid.UUID(job_id))) == "pending"
        bad = await http.post("/api/v1/jobs", content=b"{nope",
                              headers={"Content-Type": "application/json"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"
        invalid = await http.post("/api/v1/jobs", json={"jobType": "demo.noop", "priority": 99})
        assert invalid.status_code == 422 and invalid.json()["error"]["field"] == "priority"
        listed = await http.get("/api/v1/jobs")  # GET goes through the router
        assert listed.status_code == 200 and listed.json()["total"] >= 1
        assert len(calls) == 3  # the three POSTs, not the GET
    assert fastlane.PATH == "/api/v1/jobs"
