"""Errors that tell the truth (issue 21): a client mistake comes back as the client's mistake, with
the real message and the field named as REST names it, and is logged at INFO without a traceback;
only a server fault is an ERROR."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from starlette.applications import Starlette

from jobline.client import Client
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import ConfigError, ValidationFailed
from jobline.shared.security import auth

SUBMIT = "mutation($in: SubmitJobInput!) { submit(input: $in) { id } }"


async def gql(c: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    r = await c.post("/graphql", json={"query": query, "variables": variables})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# --- GraphQL -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "variables", "field", "says"), [
    ("query($n: Int!) { jobs(first: $n) { edges { node { id } } } }", {"n": "ten"}, "$n",
     "Int cannot represent non-integer value: 'ten'"),
    (SUBMIT, {}, "$in", "non-null type 'SubmitJobInput!'"),
    (SUBMIT, {"in": {"jobType": "a", "priority": "high"}}, "$in.priority",
     "Int cannot represent non-integer value: 'high'"),
    (SUBMIT, {"in": {"jobType": "a", "scheduledFor": "soon"}}, "$in.scheduledFor",
     "DateTime"),
])
async def test_graphql_variable_errors_are_bad_user_input(
        admin: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, query: str,
        variables: dict[str, Any], field: str, says: str) -> None:
    caplog.set_level(logging.INFO)
    (err,) = (await gql(admin, query, variables))["errors"]
    assert err["extensions"]["code"] == "BAD_USER_INPUT", err
    assert err["extensions"]["field"] == field
    assert says in err["message"] and "internal" not in err["message"]
    assert tracebacks(caplog) == []
    assert any(r.levelno == logging.INFO and says in r.getMessage() for r in caplog.records)


async def test_graphql_field_names_are_the_rest_names(admin: httpx.AsyncClient) -> None:
    body = await gql(admin, SUBMIT, {"in": {"jobType": "a", "delayMs": 5,
                                            "scheduledFor": "2030-01-01T00:00:00Z"}})
    assert body["errors"][0]["extensions"]["field"] == "input.delayMs"
    r = await admin.post("/api/v1/jobs", json={"jobType": "a", "delayMs": 5,
                                               "scheduledFor": "2030-01-01T00:00:00Z"})
    assert r.json()["error"]["field"] == "delayMs"


async def test_graphql_resolver_input_error_logs_info_without_traceback(
        admin: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    body = await gql(admin, SUBMIT, {"in": {"jobType": "a", "priority": 99}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await gql(admin, "{ jobs { nope } }", {})
    assert "Cannot query field 'nope'" in body["errors"][0]["message"]
    assert tracebacks(caplog) == []


async def test_graphql_server_fault_is_masked_and_logged_as_error(
        admin: httpx.AsyncClient, deps: Deps, caplog: pytest.LogCaptureFixture) -> None:
    await deps.pool.execute("ALTER TABLE jobs RENAME TO jobs_gone")
    body = await gql(admin, "{ jobs { edges { node { id } } } }", {})
    assert body["errors"][0]["message"] == "internal error"
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)


# --- REST --------------------------------------------------------------------------------------


async def test_rest_reports_every_validation_error(admin: httpx.AsyncClient) -> None:
    r = await admin.post("/api/v1/jobs", json={"jobType": "a", "priority": "x", "queue": "!!",
                                               "delayMs": -1})
    assert r.status_code == 422
    err = r.json()["error"]
    assert {e["field"] for e in err["errors"]} == {"priority", "queue", "delayMs"}
    assert all(e["message"] for e in err["errors"])
    # the first error stays at the top, as before
    assert (err["field"], err["message"]) == (err["errors"][0]["field"],
                                              err["errors"][0]["message"])


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/jobs/bulk"])
async def test_rest_array_body_says_json_object(admin: httpx.AsyncClient, path: str) -> None:
    r = await admin.post(path, json=[1])
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["message"] == "must be a JSON object, not an array", err
    assert "SubmitJobIn" not in r.text and "BulkSubmitIn" not in r.text


async def test_rest_unknown_query_parameter_is_400(admin: httpx.AsyncClient) -> None:
    r = await admin.get("/api/v1/jobs", params={"queeu": "email"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["field"] == "queeu" and "queue" in err["message"]
    assert (await admin.get("/api/v1/jobs", params={"queue": "email"})).status_code == 200


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/jobs/abc"), ("DELETE", "/api/v1/jobs/abc"),
    ("POST", "/api/v1/jobs/abc/retry"), ("GET", "/api/v1/job-batches/12")])
async def test_rest_malformed_id_says_so(admin: httpx.AsyncClient, method: str,
                                         path: str) -> None:
    r = await admin.request(method, path)
    assert r.status_code == 404
    err = r.json()["error"]
    assert "not a valid id" in err["message"] and err["field"] in ("jobId", "batchId"), err
    unknown = await admin.get(f"/api/v1/jobs/{uuid.uuid4()}")
    assert unknown.status_code == 404 and "not a valid id" not in unknown.text


async def test_idempotency_key_reused_for_another_job_is_409(admin: httpx.AsyncClient) -> None:
    first = await admin.post("/api/v1/jobs", json={"jobType": "a", "idempotencyKey": "k",
                                                   "payload": {"n": 1}})
    assert first.status_code == 201
    same = await admin.post("/api/v1/jobs", json={"jobType": "a", "idempotencyKey": "k",
                                                  "payload": {"n": 1}, "priority": 3})
    assert same.status_code == 200 and same.json()["duplicate"] is True
    assert same.json()["jobId"] == first.json()["jobId"]
    for other in ({"jobType": "b", "payload": {"n": 1}}, {"jobType": "a", "payload": {"n": 2}}):
        r = await admin.post("/api/v1/jobs", json={**other, "idempotencyKey": "k"})
        assert r.status_code == 409, r.text
        err = r.json()["error"]
        assert err["code"] == "conflict" and err["field"] == "idempotencyKey"
        assert first.json()["jobId"] in err["message"]
    # in one bulk request too, and nothing of it is stored
    r = await admin.post("/api/v1/jobs/bulk", json={"jobs": [
        {"jobType": "c", "idempotencyKey": "k2"}, {"jobType": "d", "idempotencyKey": "k2"}]})
    assert r.status_code == 409 and r.json()["error"]["field"] == "jobs[1].idempotencyKey"


async def test_rest_client_mistakes_log_info_faults_log_error(
        admin: httpx.AsyncClient, deps: Deps, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    await admin.post("/api/v1/jobs", json={"jobType": "a", "priority": "x"})
    await admin.get("/api/v1/jobs", params={"queeu": "x"})
    assert tracebacks(caplog) == []
    assert any(r.levelno == logging.INFO and "priority" in r.getMessage()
               for r in caplog.records)
    await deps.pool.execute("ALTER TABLE jobs RENAME TO jobs_gone")
    r = await admin.get("/api/v1/jobs")
    assert r.status_code == 500
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)


# --- client ------------------------------------------------------------------------------------


async def test_client_submit_many_takes_rest_keys(deps: Deps) -> None:
    c = Client(deps)
    try:
        (a, b) = await c.submit_many([
            {"jobType": "a", "payload": {"n": 1}, "maxAttempts": 2, "delayMs": 60_000,
             "idempotencyKey": "x"},
            {"job_type": "b", "timeoutMs": 1500, "dependsOn": [0]}])
        ja, jb = await c.get(a.id), await c.get(b.id)
        assert (ja.job_type, ja.max_attempts, ja.idempotency_key) == ("a", 2, "x")
        assert ja.scheduled_for_ms - ja.created_ms == 60_000
        assert (jb.job_type, jb.timeout_ms) == ("b", 1500)
        with pytest.raises(ValidationFailed) as e:
            await c.submit_many([{"jobType": "a", "quue": "q"}])
        assert e.value.field == "jobs[0].quue" and "queue" in e.value.message
    finally:
        await c.close()


@pytest.mark.parametrize("payload", [[1, 2], "text", 3])
async def test_client_non_dict_payload_is_a_clear_type_error(deps: Deps, payload: Any) -> None:
    c = Client(deps)
    try:
        with pytest.raises(TypeError, match="payload must be a dict"):
            await c.submit("a", payload)
        with pytest.raises(TypeError, match="payload must be a dict"):
            await c.submit_many([{"job_type": "a", "payload": payload}])
    finally:
        await c.close()


async def test_client_connect_says_where_it_looked(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DATABASE_URL", "REDIS_URL", "JOBLINE_DATABASE_URL", "JOBLINE_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("JOBLINE_HOME", str(tmp_path / "home"))
    with pytest.raises(ConfigError) as e:
        await Client.connect()
    assert str(tmp_path / "home" / "services.json") in str(e.value)


# --- websocket auth ------------------------------------------------------------------------------


@pytest.fixture
async def server(app: Starlette) -> AsyncIterator[str]:
    from test_graphql import uvicorn_server

    async with uvicorn_server(app) as addr:
        yield addr


async def test_websocket_refusal_says_where_the_key_goes(server: str) -> None:
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=["graphql-ws"]) as ws:
        await ws.send(orjson.dumps({"type": "connection_init", "payload": {}}).decode())
        msg = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        assert msg["type"] == "connection_error"
        assert "connection_init" in msg["payload"]["message"]


async def test_websocket_accepts_the_key_as_an_upgrade_header(server: str, deps: Deps) -> None:
    _, key = await auth.create_key(deps, "developer", "dev")
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=["graphql-transport-ws"],
                                  additional_headers={"X-Api-Key": key}) as ws:
        await ws.send(orjson.dumps({"type": "connection_init", "payload": {}}).decode())
        msg = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        assert msg["type"] == "connection_ack", msg


@pytest.mark.parametrize(("path", "field"), [
    ("/api/v1/queues?verbose=1", "verbose"), ("/api/v1/job-types?queue=email", "queue"),
    ("/api/v1/scheduled-jobs?nme=x", "nme"), ("/api/v1/audit?jobid=1", "jobid")])
async def test_every_documented_route_refuses_unknown_query_parameters(
        admin: httpx.AsyncClient, path: str, field: str) -> None:
    """One rule for every route, from its OpenAPI operation: not only the lists that check
    their own (a typo must not be answered as if it were absent)."""
    r = await admin.get(path)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field
    # declared names still work, in REST's camelCase or snake_case
    assert (await admin.get("/api/v1/jobs?pageSize=2&page_size=2")).status_code == 200
    assert (await admin.get("/healthz?probe=1")).status_code == 200  # probes answer anything

