"""Lambda handlers invoked in-process with real event shapes (API Gateway HTTP API v2 payload
format 2.0, EventBridge scheduled events) against real PostgreSQL and Valkey.

Handlers are synchronous and drive their container's own event loop, so the tests call them
from a thread (as the Lambda runtime would), never from the test's running loop.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from jobline.functions import _runtime, claim, complete, cron_tick, http, retry, submit
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.shared.security.auth import create_key

#: The API key the HTTP events carry (created per test by ``lambda_env``).
API_KEY = {"value": ""}


@pytest.fixture
async def lambda_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """The container's environment (as serverless.yml sets it), a fresh container, and an admin
    key for the events to present."""
    assert settings.database_url and settings.redis_url
    keyed = await connect(settings, pool_size=1)
    try:
        _, API_KEY["value"] = await create_key(keyed, "admin", "lambda test")
    finally:
        await keyed.close()
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("JOBLINE_REDIS_PREFIX", settings.redis_prefix)
    monkeypatch.setenv("JOBLINE_HOME", str(settings.home))
    monkeypatch.setenv("JOBLINE_LEASE_MS", "1000")
    monkeypatch.delenv("JOBLINE_SSM_PREFIX", raising=False)
    yield
    await asyncio.to_thread(_runtime.RUNTIME.reset)


class FakeContext:
    """The attributes of the Lambda context object that mangum and logging read."""

    function_name = "jobline-test"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    memory_limit_in_mb = 512

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def http_v2_event(method: str, path: str, body: Any = None, *, query: str = "",
                  route_key: str | None = None, base64_body: bool = False) -> dict[str, Any]:
    """An API Gateway HTTP API event, payload format version 2.0, as AWS documents it."""
    raw = b"" if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
    now = int(time.time() * 1000)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "cookies": [],
        "headers": {
            "accept": "application/json",
            "content-type": "application/json",
            "content-length": str(len(raw)),
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "user-agent": "jobline-test",
            "x-api-key": API_KEY["value"],
            "x-amzn-trace-id": "Root=1-5e6722a7-cc56xmpl46db7ae02d4da47e",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "jobline-test"},
            "requestId": f"{uuid.uuid4().hex[:16]}=",
            "routeKey": route_key or f"{method} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now / 1000)),
            "timeEpoch": now,
        },
        "isBase64Encoded": base64_body,
    }
    if query:
        event["queryStringParameters"] = dict(p.split("=", 1) for p in query.split("&"))
    if body is not None:
        event["body"] = base64.b64encode(raw).decode() if base64_body else raw.decode()
    return event


def scheduled_event(at: str = "2026-11-28T01:07:00Z") -> dict[str, Any]:
    """An EventBridge scheduled event (what a ``rate(1 minute)`` rule delivers)."""
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": at,
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/jobline-local-cron-tick"],
        "detail": {},
    }


async def invoke(handler: Any, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = await asyncio.to_thread(handler, event, FakeContext())
    return result


def body_of(resp: dict[str, Any]) -> Any:
    raw = resp["body"]
    if resp.get("isBase64Encoded"):
        raw = base64.b64decode(raw)
    return orjson.loads(raw)


# --- submit ------------------------------------------------------------------------------------


async def test_submit_stores_the_job_and_reuses_the_containers_connections(
        lambda_env: None, deps: Deps) -> None:
    r = await invoke(submit.handler, http_v2_event(
        "POST", "/api/v1/jobs", {"queue": "emails", "jobType": "send", "payload": {"to": "a"}}))
    assert r["statusCode"] == 201, r
    assert r["headers"]["content-type"] == "application/json"
    job_id = uuid.UUID(body_of(r)["jobId"])
    row = await deps.pool.fetchrow("SELECT queue_name, status, payload FROM jobs WHERE id = $1",
                                   job_id)
    assert (row["queue_name"], row["status"], row["payload"]) == ("emails", "pending", {"to": "a"})
    assert (await deps.dispatch.depth(["emails"]))["emails"]["ready"] == 1
    pool = _runtime.RUNTIME.deps.pool if _runtime.RUNTIME.deps else None
    loop = _runtime.RUNTIME.loop
    # a warm invocation (base64 body, as API Gateway sends binary media) reuses pool and loop
    r = await invoke(submit.handler, http_v2_event(
        "POST", "/api/v1/jobs/bulk", {"jobs": [{"queue": "emails", "jobType": "send",
                                                "payload": {"i": i}} for i in range(3)]},
        base64_body=True))
    assert r["statusCode"] == 201 and len(body_of(r)["jobs"]) == 3
    assert _runtime.RUNTIME.deps is not None and _runtime.RUNTIME.deps.pool is pool
    assert _runtime.RUNTIME.loop is loop and not loop.is_closed()
    assert await deps.pool.fetchval("SELECT count(*) FROM jobs") == 4


async def test_submit_function_applies_the_job_type_registry(lambda_env: None,
                                                             deps: Deps) -> None:
    """A Lambda submit that omits queue/attempts/timeout/backoff gets the registered values
    (resolved in SQL like every path, tests/test_job_types.py); explicit fields win."""
    from jobline.shared.core import job_types

    await job_types.publish(deps, [job_types.JobTypeDefaults(
        "resize_avatar", "avatars", 5, 30_000, {"baseMs": 1234})])
    sql = "SELECT queue_name, max_attempts, timeout_ms, backoff FROM jobs WHERE id = $1"
    r = await invoke(submit.handler, http_v2_event("POST", "/api/v1/jobs",
                                                   {"jobType": "resize_avatar"}))
    assert r["statusCode"] == 201, r
    got = await deps.pool.fetchrow(sql, uuid.UUID(body_of(r)["jobId"]))
    assert tuple(got) == ("avatars", 5, 30_000, {"baseMs": 1234})
    r = await invoke(submit.handler, http_v2_event("POST", "/api/v1/jobs", {
        "jobType": "resize_avatar", "queue": "q2", "maxAttempts": 2, "timeoutMs": 9}))
    got = await deps.pool.fetchrow(sql, uuid.UUID(body_of(r)["jobId"]))
    assert tuple(got) == ("q2", 2, 9, {"baseMs": 1234})


async def test_submit_function_gives_the_cores_backlog_answer(
        lambda_env: None, deps: Deps, monkeypatch: pytest.MonkeyPatch) -> None:
    """The submit limits are the core's, so the Lambda shell answers as REST does (defect 4)."""
    monkeypatch.setenv("JOBLINE_QUEUE_DEPTHS", '{"capped": 1}')
    job = {"queue": "capped", "jobType": "send"}
    assert (await invoke(submit.handler, http_v2_event("POST", "/api/v1/jobs", job)))[
        "statusCode"] == 201
    refused = await invoke(submit.handler, http_v2_event("POST", "/api/v1/jobs/bulk",
                                                         {"jobs": [job]}))
    assert refused["statusCode"] == 503, refused
    assert body_of(refused)["error"]["code"] == "unavailable"
    assert await deps.pool.fetchval("SELECT count(*) FROM jobs") == 1


async def test_submit_rejects_bad_input_naming_the_field_and_stores_nothing(
        lambda_env: None, deps: Deps) -> None:
    r = await invoke(submit.handler, http_v2_event(
        "POST", "/api/v1/jobs", {"queue": "emails", "jobType": "send", "payload": {},
                                 "priority": 99}))
    assert r["statusCode"] == 422
    assert body_of(r)["error"]["field"] == "priority"
    r = await invoke(submit.handler, http_v2_event("POST", "/api/v1/jobs", b"{not json"))
    assert r["statusCode"] == 400
    assert await deps.pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_submit_function_serves_only_its_routes(lambda_env: None) -> None:
    r = await invoke(submit.handler, http_v2_event("GET", "/api/v1/queues"))
    assert r["statusCode"] == 404


# --- claim / complete (the remote-worker protocol as functions) --------------------------------


async def test_claim_then_complete_through_the_functions(lambda_env: None, deps: Deps) -> None:
    [sub] = await jobs.submit_many(deps, [JobSpec(queue="q", job_type="t", payload={"n": 1})])
    r = await invoke(claim.handler, http_v2_event(
        "POST", "/api/v1/worker/claim", {"workerId": "lambda-w", "queues": ["q"], "n": 10}))
    assert r["statusCode"] == 200, r
    [job] = body_of(r)["jobs"]
    assert job["id"] == str(sub.submitted.id) and job["payload"] == {"n": 1}
    r = await invoke(claim.handler, http_v2_event("POST", "/api/v1/worker/heartbeat", {
        "workerId": "lambda-w", "leases": [{"id": job["id"], "token": job["token"],
                                            "queue": "q"}]}))
    assert body_of(r)["lost"] == []
    outcome = {"id": job["id"], "token": job["token"], "status": "ok", "result": {"sum": 2}}
    r = await invoke(complete.handler, http_v2_event("POST", "/api/v1/worker/complete",
                                                     {"outcomes": [outcome]}))
    assert body_of(r)["completed"] == [job["id"]]
    j = await jobs.get_job(deps, sub.submitted.id)
    assert j.status == "completed" and j.result == {"sum": 2} and j.worker_id == "lambda-w"
    # fencing: the same outcome again is rejected, the job stays completed once
    r = await invoke(complete.handler, http_v2_event("POST", "/api/v1/worker/complete",
                                                     {"outcomes": [outcome]}))
    assert body_of(r)["rejected"] == [job["id"]]


# --- retry ---------------------------------------------------------------------------------------


async def test_retry_sends_a_dead_lettered_job_back(lambda_env: None, deps: Deps) -> None:
    [sub] = await jobs.submit_many(deps, [JobSpec(queue="q", job_type="t", payload={},
                                                  max_attempts=1)])
    [c] = await jobs.claim(deps, "w", ["q"], 1)
    await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="x", error_type="x")], [1])
    assert (await jobs.get_job(deps, c.id)).status == "dead_letter"
    path = f"/api/v1/jobs/{sub.submitted.id}/retry"
    r = await invoke(retry.handler, http_v2_event("POST", path,
                                                  route_key="POST /api/v1/jobs/{jobId}/retry"))
    assert r["statusCode"] == 200 and body_of(r)["status"] == "pending"
    assert (await jobs.get_job(deps, c.id)).status == "pending"
    r = await invoke(retry.handler, http_v2_event("POST", path))
    assert r["statusCode"] == 409  # pending cannot be retried


# --- http: the whole app -------------------------------------------------------------------------


async def test_http_serves_the_whole_api(lambda_env: None, deps: Deps) -> None:
    await jobs.submit_many(deps, [JobSpec(queue="q", job_type="t", payload={"i": i})
                                  for i in range(3)])
    r = await invoke(http.handler, http_v2_event("GET", "/api/v1/jobs", query="queue=q&pageSize=2",
                                                 route_key="ANY /{proxy+}"))
    assert r["statusCode"] == 200
    page = body_of(r)
    assert page["total"] == 3 and len(page["jobs"]) == 2
    r = await invoke(http.handler, http_v2_event("GET", "/api/v1/queues"))
    assert [q["name"] for q in body_of(r)["queues"]] == ["q"]
    r = await invoke(http.handler, http_v2_event("GET", "/readyz"))
    assert body_of(r)["status"] == "ok"
    r = await invoke(http.handler, http_v2_event("GET", "/api/v1/openapi.json"))
    assert "/api/v1/worker/claim" in body_of(r)["paths"]
    r = await invoke(http.handler, http_v2_event("GET", "/api/v1/jobs",
                                                 query="pageSize=100000"))
    assert r["statusCode"] == 422 and body_of(r)["error"]["field"] == "pageSize"


# --- cron_tick -------------------------------------------------------------------------------------


async def test_cron_tick_promotes_reaps_and_rebuilds_redis(lambda_env: None, deps: Deps) -> None:
    await deps.dispatch.set_epoch("established")  # Redis has its state at first
    # a job whose worker died (lease expired), a delayed job that is due now, and a Redis wipe
    [lost] = await jobs.submit_many(deps, [JobSpec(queue="q", job_type="t", payload={})])
    [c] = await jobs.claim(deps, "dead-worker", ["q"], 1)
    assert c.id == lost.submitted.id
    await deps.pool.execute("UPDATE jobs SET lease_expires_at = now() - interval '1 second' "
                            "WHERE id = $1", c.id)
    # submitted after the claim: a claim promotes due delayed jobs, and on a busy machine the
    # 50 ms can pass before it runs (the Lambda reads the system clock, so time cannot be faked)
    now = deps.clock.now_ms()
    await jobs.submit_many(deps, [JobSpec(queue="q", job_type="t", payload={},
                                          scheduled_for_ms=now + 50)])

    async def due() -> bool:
        return deps.clock.now_ms() > now + 50

    from jobline.testing import wait_until

    await wait_until(due, message="delayed job due")
    r = await invoke(cron_tick.handler, scheduled_event("2026-11-28T01:07:00Z"))
    assert r["promoted"] == 1 and r["reaped"] == 1, r
    assert r["reconciled"] is None  # Redis had its state; minute 7 is no full-reconcile minute
    depth = (await deps.dispatch.depth(["q"]))["q"]
    # the reaped job waits out its retry backoff (delayed) or is ready already
    assert depth["ready"] + depth["delayed"] == 2 and depth["leased"] == 0
    assert depth["ready"] >= 1
    attempt = await deps.pool.fetchval("SELECT outcome FROM job_attempts WHERE job_id = $1", c.id)
    assert attempt == "lease_expired"
    orjson.dumps(r)  # the result is what Lambda returns: it must be JSON

    # Redis loses everything; the next tick rebuilds it from Postgres
    keys = [k async for k in deps.redis.scan_iter(match=f"{deps.settings.redis_prefix}*")]
    await deps.redis.delete(*keys)
    r = await invoke(cron_tick.handler, scheduled_event("2026-11-28T01:08:00Z"))
    assert r["reconciled"] == {"scanned": 2, "restored": 2}
    depth = (await deps.dispatch.depth(["q"]))["q"]
    assert depth["ready"] + depth["delayed"] == 2


async def test_cron_tick_full_reconcile_on_the_tenth_minute(lambda_env: None, deps: Deps) -> None:
    await deps.dispatch.set_epoch("established")
    [sub] = await jobs.submit_many(deps, [JobSpec(queue="q", job_type="t", payload={})])
    # a job committed in Postgres whose dispatch entry never made it to Redis (crash between)
    await deps.dispatch.remove([("q", sub.submitted.id)])
    r = await invoke(cron_tick.handler, scheduled_event("2026-11-28T01:09:00Z"))
    assert r["reconciled"] is None
    assert (await deps.dispatch.depth(["q"]))["q"]["ready"] == 0
    r = await invoke(cron_tick.handler, scheduled_event("2026-11-28T01:10:00Z"))
    assert r["reconciled"] == {"scanned": 1, "restored": 1}
    assert (await deps.dispatch.depth(["q"]))["q"]["ready"] == 1


async def test_cold_start_connects_once_per_container(lambda_env: None) -> None:
    rt = _runtime.RUNTIME
    assert rt.deps is None
    await invoke(cron_tick.handler, scheduled_event())
    first = rt.deps
    assert first is not None
    for _ in range(3):
        await invoke(cron_tick.handler, scheduled_event())
        await invoke(http.handler, http_v2_event("GET", "/healthz"))
    assert rt.deps is first and rt.invocations == 7


# --- cold start ----------------------------------------------------------------------------------


def test_handler_modules_import_nothing_heavy() -> None:
    """Lambda's init phase imports only the handler module: drivers, the web stack and boto3
    load lazily on the first invocation that needs them."""
    import subprocess
    import sys

    heavy = ("boto3", "botocore", "mangum", "starlette", "asyncpg", "pydantic", "redis")
    code = ("import sys\n"
            "import jobline.functions.submit, jobline.functions.claim, jobline.functions.complete\n"
            "import jobline.functions.retry, jobline.functions.cron_tick, jobline.functions.http\n"
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""


@pytest.mark.slow
@pytest.mark.timeout(600)  # starts its own stores; a busy machine can take minutes
def test_coldstart_bench_runs_and_reports(tmp_path: Any) -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).parent.parent / "bench" / "coldstart.py"
    subprocess.run([sys.executable, str(bench), "--runs", "1", "--out", str(tmp_path)],
                   check=True, capture_output=True, timeout=540)
    report = json.loads((tmp_path / "coldstart.json").read_text())
    assert set(report["handlers"]) == {"submit", "claim", "complete", "retry", "cron_tick", "http"}
    for name, r in report["handlers"].items():
        # the figures are the benchmark's (bench/results); beside other load, only their shape
        assert r["total_best_ms"] > 0, (name, r)
