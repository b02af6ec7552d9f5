"""Optional LLM narration (docs/ai.md "Narration") against a real local HTTP server speaking the
OpenAI chat-completions protocol (Starlette under uvicorn on a free port, recording every
request): the request's shape, that no payload value ever reaches it, that the narrated text is
used where the facts were computed (top issues, DLQ groups, anomaly causes, scaling), and that a
server slower than the timeout, an error or garbage falls back to the computed template."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from test_ai_top_issues import anomaly_row, dead_letters
from test_analytics_api import MIN, T0

from jobline.analytics.ai import dlq as dlq_ai
from jobline.analytics.ai import narrate
from jobline.shared.platform.clock import FakeClock
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.testing import wait_until

MARKER = "zq-payload-marker-7f3a9c"
REPLY = "Narrated: the export jobs keep failing upstream; fix it, then retry."


@dataclass
class Llm:
    """The server's recorded requests and its behaviour (``ok``, ``slow``, ``error``,
    ``garbage``)."""

    url: str
    mode: str = "ok"
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def llm() -> AsyncIterator[Llm]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    state = Llm(url=f"http://127.0.0.1:{sock.getsockname()[1]}/v1")

    async def completions(request: Request) -> Response:
        body = await request.body()
        state.requests.append((request.url.path, dict(request.headers), body))
        if state.mode == "slow":
            # longer than any client timeout; released at teardown so the server stops promptly
            await asyncio.wait_for(state.release.wait(), 60)
        if state.mode == "error":
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
        if state.mode == "garbage":
            return PlainTextResponse("<html>not json</html>")
        return JSONResponse({"id": "c1", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": REPLY},
             "finish_reason": "stop"}]})

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async def started() -> bool:
        return bool(server.started)

    await wait_until(started, message="LLM server started")
    try:
        yield state
    finally:
        state.release.set()
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def deps_settings(settings: Settings, llm: Llm) -> Settings:
    return settings.with_(llm_url=llm.url, llm_model="test-model", llm_api_key="k-123",
                          llm_timeout_ms=3000)


async def history(deps: Deps) -> None:
    await dead_letters(deps, 4, payload={"secret": MARKER, "nested": {"v": [MARKER]}},
                       error="upstream returned 500 for request 42")
    await anomaly_row(deps, "dq", T0 - 30 * MIN, T0 - 10 * MIN)


def assert_no_payload_value(llm: Llm) -> None:
    assert llm.requests
    for _, headers, body in llm.requests:
        assert MARKER.encode() not in body
        assert MARKER not in " ".join(headers.values())


async def test_narrated_texts_come_from_facts_only(deps: Deps, llm: Llm,
                                                   admin: httpx.AsyncClient) -> None:
    await history(deps)
    r = await admin.get("/api/v1/ai/top-issues", params={"to": str(T0 + MIN)})
    assert r.status_code == 200, r.text
    issues = r.json()["issues"]
    assert [i["kind"] for i in issues] == ["dead_letters", "anomaly"]
    assert all(i["narrated"] and i["detail"] == REPLY for i in issues)

    g = (await admin.get("/api/v1/ai/dlq-insights")).json()["groups"]
    assert [(x["narrated"], x["suggestion"]) for x in g] == [(True, REPLY)]

    a = (await admin.get("/api/v1/ai/anomalies",
                         params={"from": "2027-01-15T07:00:00Z"})).json()["anomalies"]
    assert [(x["narrated"], x["causesSummary"]) for x in a] == [(True, REPLY)]
    assert a[0]["possibleCauses"] == ["ValueError in parse: 30 failures in 5 min"]  # unchanged

    s = (await admin.post("/api/v1/ai/scaling-recommendation", json={
        "queue": "dq", "targetLatencyMs": 1000, "pendingJobs": 10,
        "averageJobDurationMs": 100, "currentWorkers": 2})).json()
    assert s["narrated"] is True and s["reasoning"] == [REPLY]
    assert s["suggestedWorkers"] >= 1 and s["inputs"]["pendingJobs"] == 10  # figures unchanged

    # the protocol: POST {url}/chat/completions with the model, a system and a user message
    assert {p for p, _, _ in llm.requests} == {"/v1/chat/completions"}
    for _, headers, body in llm.requests:
        req = orjson.loads(body)
        assert req["model"] == "test-model"
        assert [m["role"] for m in req["messages"]] == ["system", "user"]
        assert all(isinstance(m["content"], str) and m["content"] for m in req["messages"])
        assert headers["authorization"] == "Bearer k-123"
    users = [orjson.loads(b)["messages"][1]["content"] for _, _, b in llm.requests]
    assert any("export" in u and "HTTPError" in u for u in users)  # the facts are sent
    assert_no_payload_value(llm)

    gq = (await admin.post("/graphql", json={"query": "{ dlqInsights { groups { suggestion "
                                                      "narrated } } }"})).json()
    assert gq["data"]["dlqInsights"]["groups"] == [{"suggestion": REPLY, "narrated": True}]
    assert_no_payload_value(llm)


@pytest.mark.parametrize("mode", ["slow", "error", "garbage"])
async def test_a_failing_server_falls_back_to_the_template(deps: Deps, llm: Llm,
                                                           mode: str) -> None:
    await history(deps)
    plain = await dlq_ai.insights(dataclasses.replace(
        deps, settings=deps.settings.with_(llm_url=None)))
    assert [x["narrated"] for x in plain["groups"]] == [False]
    llm.mode = mode
    # the slow server never answers within the 300 ms the client waits
    quick = dataclasses.replace(deps, settings=deps.settings.with_(llm_timeout_ms=300))
    out = await dlq_ai.insights(quick)
    assert out == plain
    # it was asked, and its answer (or none) was not used
    async def asked() -> bool:
        return len(llm.requests) == 1

    await wait_until(asked, message="the request")
    assert_no_payload_value(llm)


async def test_without_the_url_nothing_is_called(deps: Deps, llm: Llm) -> None:
    await history(deps)
    off = dataclasses.replace(deps, settings=deps.settings.with_(llm_url=None))
    out = await dlq_ai.insights(off)
    assert out["groups"][0]["narrated"] is False and out["groups"][0]["suggestion"] != REPLY
    assert llm.requests == []


def test_only_allowed_facts_are_sent() -> None:
    assert narrate.facts_only({"queue": "q", "payload": {"a": MARKER}, "error": MARKER}) == {
        "queue": "q"}


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBLINE_LLM_URL", "http://llm.local/v1/")
    monkeypatch.setenv("JOBLINE_LLM_MODEL", "m")
    monkeypatch.setenv("JOBLINE_LLM_API_KEY", "k-9f8e7d")
    monkeypatch.delenv("JOBLINE_LLM_TIMEOUT_MS", raising=False)
    s = Settings()
    assert (s.llm_url, s.llm_model, s.llm_api_key, s.llm_timeout_ms) == (
        "http://llm.local/v1", "m", "k-9f8e7d", 3000)
    assert "k-9f8e7d" not in repr(s)
    monkeypatch.delenv("JOBLINE_LLM_URL")
    assert Settings().llm_url is None and not narrate.enabled(Settings())
