"""The GraphQL API over real clients: httpx for queries and mutations, a `websockets` client
over a real uvicorn server for subscriptions (both protocols), role checks and limits."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
import websockets
from starlette.applications import Starlette

from jobline.api.app import create_app
from jobline.graphql.schema import schema
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome
from jobline.shared.events.bus import EventBus
from jobline.shared.events.buses import create_bus
from jobline.shared.events.outbox import Relay
from jobline.shared.platform.connections import Deps
from jobline.shared.security import auth
from jobline.testing import serve_app, wait_until

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"


@pytest.fixture
async def dev_key(deps: Deps) -> str:
    return (await auth.create_key(deps, "developer", "dev"))[1]


async def gql(client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None,
              key: str | None = None) -> dict[str, Any]:
    headers = {"X-Api-Key": key} if key else {}
    r = await client.post("/graphql", json={"query": query, "variables": variables or {}},
                          headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


def test_committed_schema_matches_the_code() -> None:
    printed = schema.as_str() + "\n"
    if os.environ.get("JOBLINE_UPDATE_SCHEMA"):
        SCHEMA_FILE.write_text(printed)
    assert SCHEMA_FILE.read_text() == printed, (
        "schema.graphql is stale: JOBLINE_UPDATE_SCHEMA=1 pytest tests/test_graphql.py")


SUBMIT = """mutation($in: SubmitJobInput!) { submit(input: $in) { id status queue duplicate } }"""


async def test_submit_and_read_a_job_with_attempts_batch_and_graph(
        admin: httpx.AsyncClient, deps: Deps) -> None:
    b = await gql(admin, """mutation { createBatch(name: "b1", jobs: [
        {queue: "gq", jobType: "a", payload: {n: 1}},
        {queue: "gq", jobType: "b", dependsOn: ["0"]}]) { id total jobs { id status } } }""")
    batch = b["data"]["createBatch"]
    assert batch["total"] == 2
    first, second = (j["id"] for j in batch["jobs"])
    (c,) = await jobs.claim(deps, "w1", ["gq"], 1)
    assert str(c.id) == first
    await jobs.fail(deps, [Outcome(c.id, c.token, False, error="nope", error_type="E",
                                   retry_after_ms=0)], [c.attempt])
    body = await gql(admin, """query($id: ID!) { job(id: $id) {
        id status attempts attemptHistory { attempt outcome errorType }
        batch { id name total pending }
        dependencyGraph { nodes { id } edges { dependency dependent } } } }""", {"id": first})
    job = body["data"]["job"]
    assert job["attemptHistory"] == [{"attempt": 1, "outcome": "failed", "errorType": "E"}]
    assert job["batch"] == {"id": batch["id"], "name": "b1", "total": 2, "pending": 2}
    assert job["dependencyGraph"]["edges"] == [{"dependency": first, "dependent": second}]
    dep = await gql(admin, "query($id: ID!) { job(id: $id) { status dependsOn { id } } }",
                    {"id": second})
    assert dep["data"]["job"] == {"status": "WAITING", "dependsOn": [{"id": first}]}
    missing = await gql(admin, "query($id: ID!) { job(id: $id) { id } }",
                        {"id": str(uuid.uuid4())})
    assert missing["data"]["job"] is None


async def test_jobs_connection_filters_and_pages(admin: httpx.AsyncClient, deps: Deps) -> None:
    for i in range(5):
        await gql(admin, SUBMIT, {"in": {"queue": "pq", "jobType": "t", "payload": {"i": i,
                                                                                   "k": "x"}}})
    await gql(admin, SUBMIT, {"in": {"queue": "other", "jobType": "t", "payload": {"i": 9}}})
    q = """query($f: JobFilter, $after: String) { jobs(filter: $f, first: 2, after: $after) {
        edges { cursor node { id payload } } pageInfo { hasNextPage endCursor } } }"""
    seen: list[int] = []
    after = None
    while True:
        page = (await gql(admin, q, {"f": {"queue": "pq"}, "after": after}))["data"]["jobs"]
        seen += [e["node"]["payload"]["i"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [4, 3, 2, 1, 0]  # newest first, every job once
    m = await gql(admin, q, {"f": {"payloadMatch": {"i": 3}}})
    assert [e["node"]["payload"]["i"] for e in m["data"]["jobs"]["edges"]] == [3]
    (c,) = await jobs.claim(deps, "w", ["other"], 1)
    await jobs.fail(deps, [Outcome(c.id, c.token, False, error="disk full on /dev/x",
                                   error_type="IOError", final=True)], [c.attempt])
    for f in ({"search": "disk full"}, {"errorType": "IOError"}, {"search": str(c.id)},
              {"status": "DEAD_LETTER"}):
        got = await gql(admin, q, {"f": f})
        assert [e["node"]["id"] for e in got["data"]["jobs"]["edges"]] == [str(c.id)], f
    bad = await gql(admin, q, {"f": {"createdFrom": "2030-01-01T00:00:00Z",
                                     "createdTo": "2020-01-01T00:00:00Z"}})
    assert code(bad) == "BAD_USER_INPUT"


async def test_domain_errors_have_codes_and_no_traces(admin: httpx.AsyncClient,
                                                      deps: Deps) -> None:
    bad = await gql(admin, SUBMIT, {"in": {"queue": "q", "jobType": "t", "priority": 999}})
    assert code(bad) == "BAD_USER_INPUT"
    assert bad["errors"][0]["extensions"]["field"] == "input.priority"
    assert await deps.pool.fetchval("SELECT count(*) FROM jobs") == 0  # nothing stored
    nf = await gql(admin, "mutation($id: ID!) { cancel(id: $id) { status } }",
                   {"id": str(uuid.uuid4())})
    assert code(nf) == "NOT_FOUND"
    ok = await gql(admin, SUBMIT, {"in": {"queue": "q", "jobType": "t"}})
    jid = ok["data"]["submit"]["id"]
    conflict = await gql(admin, "mutation($id: ID!) { retryFromDlq(id: $id) { status } }",
                         {"id": jid})
    assert code(conflict) == "CONFLICT"
    cancelled = await gql(admin, "mutation($id: ID!) { cancel(id: $id) { status } }",
                          {"id": jid})
    assert cancelled["data"]["cancel"]["status"] == "CANCELLED"
    notuuid = await gql(admin, "mutation { cancel(id: \"zz\") { status } }")
    assert code(notuuid) == "BAD_USER_INPUT"
    for body in (bad, nf, conflict, notuuid):
        assert "Traceback" not in orjson.dumps(body).decode()


async def test_admin_operations_are_forbidden_to_developers(
        admin: httpx.AsyncClient, dev_key: str, deps: Deps) -> None:
    for op in ('mutation { pauseQueue(queue: "q") { paused } }',
               'mutation { retryDeadLetters(filter: {queue: "q"}) { count } }',
               'mutation { deleteDeadLetters(filter: {queue: "q"}) { count } }',
               'mutation { setRateLimit(queue: "q", limit: 5) { name } }',
               'mutation { setConcurrency(queue: "q", maxInFlight: 5) { name } }',
               "{ queueMetrics { name } }", "{ workers { id } }", "{ deadLetters { nextCursor } }",
               "{ auditEvents { nextCursor } }", "{ throughputSeries { minuteMs } }",
               "{ durationHistogram { total } }", "{ jobTimeline { nextCursor } }"):
        body = await gql(admin, op, key=dev_key)
        assert code(body) == "FORBIDDEN", op
    ctl = await deps.pool.fetchval("SELECT paused FROM queues WHERE name = 'q'")
    assert not ctl  # the refused pause changed nothing
    mine = await gql(admin, SUBMIT, {"in": {"queue": "q", "jobType": "t"}}, key=dev_key)
    assert mine["data"]["submit"]["status"] == "PENDING"
    r = await admin.post("/graphql", json={"query": "{ queues { name } }"},
                         headers={"X-Api-Key": "jl_wrong"})
    assert r.status_code == 401


async def test_queue_controls_dlq_bulk_and_schedules(admin: httpx.AsyncClient,
                                                     deps: Deps) -> None:
    p = await gql(admin, 'mutation { pauseQueue(queue: "cq") { name paused } }')
    assert p["data"]["pauseQueue"] == {"name": "cq", "paused": True}
    r = await gql(admin, 'mutation { setRateLimit(queue: "cq", limit: 5, windowMs: 1000) '
                         '{ rateLimit { limit windowMs } } }')
    assert r["data"]["setRateLimit"]["rateLimit"] == {"limit": 5, "windowMs": 1000}
    c = await gql(admin, 'mutation { setConcurrency(queue: "cq", maxInFlight: 3) '
                         '{ maxInFlight } }')
    assert c["data"]["setConcurrency"]["maxInFlight"] == 3
    await gql(admin, 'mutation { resumeQueue(queue: "cq") { paused } }')
    qs = await gql(admin, "{ queues { name controls { paused maxInFlight rateLimit { limit } } "
                          "counts { pending } } }")
    (cq,) = [q for q in qs["data"]["queues"] if q["name"] == "cq"]
    assert cq["controls"] == {"paused": False, "maxInFlight": 3, "rateLimit": {"limit": 5}}
    # two dead letters, bulk-retried by filter
    for _ in range(2):
        await jobs.submit(deps, JobSpec("dq", "t", {}, max_attempts=1))
    for cl in await jobs.claim(deps, "w", ["dq"], 2):
        await jobs.fail(deps, [Outcome(cl.id, cl.token, False, error="x", error_type="X")],
                        [cl.attempt])
    dl = await gql(admin, '{ deadLetters(filter: {queue: "dq"}) { jobs { id status } } }')
    assert len(dl["data"]["deadLetters"]["jobs"]) == 2
    rt = await gql(admin, 'mutation { retryDeadLetters(filter: {queue: "dq"}) { count } }')
    assert rt["data"]["retryDeadLetters"]["count"] == 2
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE queue_name = 'dq' AND status = 'pending'") == 2
    s = await gql(admin, """mutation { createSchedule(input: {name: "n", queue: "sq",
        jobType: "t", schedule: "*/5 * * * *"}) { id nextRuns enabled } }""")
    sched = s["data"]["createSchedule"]
    assert len(sched["nextRuns"]) >= 1
    u = await gql(admin, 'mutation($id: ID!) { updateSchedule(id: $id, input: {enabled: false})'
                         ' { enabled } }', {"id": sched["id"]})
    assert u["data"]["updateSchedule"]["enabled"] is False
    lst = await gql(admin, "{ scheduledJobs { id } }")
    assert [x["id"] for x in lst["data"]["scheduledJobs"]] == [sched["id"]]
    bad = await gql(admin, 'mutation { createSchedule(input: {name: "n", jobType: "t", '
                           'schedule: "nonsense"}) { id } }')
    assert code(bad) == "BAD_USER_INPUT"
    d = await gql(admin, 'mutation($id: ID!) { deleteSchedule(id: $id) }', {"id": sched["id"]})
    assert d["data"]["deleteSchedule"] is True
    assert code(await gql(admin, 'mutation($id: ID!) { deleteSchedule(id: $id) }',
                          {"id": sched["id"]})) == "NOT_FOUND"


async def test_dataloaders_batch_relations(admin: httpx.AsyncClient, deps: Deps) -> None:
    await gql(admin, """mutation { createBatch(name: "b", jobs: [
        {queue: "lq", jobType: "a"}, {queue: "lq", jobType: "a"}, {queue: "lq", jobType: "a"},
        {queue: "lq", jobType: "a"}]) { id } }""")
    statements: list[str] = []

    class CountingPool:
        """The real pool, recording each statement the resolvers send."""

        def __getattr__(self, name: str) -> Any:
            return getattr(deps.pool, name)

        async def fetch(self, query: str, *args: Any) -> Any:
            statements.append(query)
            return await deps.pool.fetch(query, *args)

    spied = dataclasses.replace(deps, pool=CountingPool())
    async for c in serve_app(create_app(deps.settings, deps=spied)):
        statements.clear()
        body = await gql(c, """{ jobs(filter: {queue: "lq"}) { edges { node {
            attemptHistory { attempt } batch { total } dependsOn { id } } } } }""")
    assert len(body["data"]["jobs"]["edges"]) == 4
    # the page, then one statement per relation (batches: rows + counts), not one per job
    assert len(statements) == 1 + 1 + 1 + 2, statements


async def test_depth_token_and_alias_limits(admin: httpx.AsyncClient) -> None:
    deep = ("{ jobs { edges { node { " + "dependsOn { " * 8 + "id" + " }" * 8 + " } } } }")
    body = await gql(admin, deep)
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]
    aliases = "{ " + " ".join(f"a{i}: queues {{ name }}" for i in range(30)) + " }"
    assert "aliases" in (await gql(admin, aliases))["errors"][0]["message"]
    tokens = "{ queues { " + " ".join(["name"] * 2100) + " } }"
    assert "token" in (await gql(admin, tokens))["errors"][0]["message"].lower()


async def test_graphiql_only_in_dev_mode(deps: Deps) -> None:
    for dev, expect in ((False, 404), (True, 200)):
        app = create_app(deps.settings.with_(dev_mode=dev), deps=deps)
        async for c in serve_app(app, role="developer"):
            r = await c.get("/graphql", headers={"accept": "text/html"})
            assert (r.status_code, "graphiql" in r.text.lower()) == (
                expect, expect == 200), r.text[:200]


# --- subscriptions over a real server ------------------------------------------------------------


@contextlib.asynccontextmanager
async def uvicorn_server(app: Starlette) -> AsyncIterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: _started(server), message="uvicorn started")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _started(server: uvicorn.Server) -> bool:
    return bool(server.started)


@pytest.fixture
async def bus(deps: Deps) -> AsyncIterator[EventBus]:
    b = await create_bus(deps.settings)
    yield b
    await b.close()


@pytest.fixture
async def relay(deps: Deps, bus: EventBus) -> AsyncIterator[Relay]:
    r = Relay(deps, bus, safety_s=0.2)
    task = asyncio.create_task(r.run())
    yield r
    r.request_stop()
    await task


@pytest.fixture
async def server(app: Starlette, relay: Relay) -> AsyncIterator[str]:
    async with uvicorn_server(app) as addr:
        yield addr


async def subscribers(app: Starlette, n: int) -> None:
    async def enough() -> bool:
        feed = getattr(app.state, "live_feed", None)
        return feed is not None and len(feed._subs) >= n

    await wait_until(enough, message=f"{n} live-feed subscribers")


class Transport:
    """A minimal graphql-transport-ws / graphql-ws client over `websockets`."""

    def __init__(self, ws: Any, legacy: bool) -> None:
        self.ws, self.legacy = ws, legacy

    async def init(self, key: str | None) -> None:
        await self.ws.send(orjson.dumps({"type": "connection_init",
                                         "payload": {"apiKey": key} if key else {}}).decode())
        while True:
            msg = orjson.loads(await self.ws.recv())
            if msg["type"] == "connection_ack":
                return
            assert msg["type"] == "ka", msg

    async def subscribe(self, sid: str, query: str, variables: dict[str, Any] | None = None
                        ) -> None:
        await self.ws.send(orjson.dumps({
            "id": sid, "type": "start" if self.legacy else "subscribe",
            "payload": {"query": query, "variables": variables or {}}}).decode())

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        while True:
            msg = orjson.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if msg["type"] in ("next", "data"):
                payload: dict[str, Any] = msg["payload"]
                return payload
            assert msg["type"] == "ka", msg


@contextlib.asynccontextmanager
async def connect_ws(addr: str, key: str | None, legacy: bool = False
                     ) -> AsyncIterator[Transport]:
    proto = "graphql-ws" if legacy else "graphql-transport-ws"
    async with websockets.connect(f"ws://{addr}/graphql", subprotocols=[proto]) as ws:
        t = Transport(ws, legacy)
        await t.init(key)
        yield t


@pytest.fixture
async def admin_key(deps: Deps) -> str:
    return (await auth.create_key(deps, "admin", "admin"))[1]


@pytest.mark.parametrize("legacy", [False, True])
async def test_job_events_subscription(server: str, app: Starlette, deps: Deps, dev_key: str,
                                       legacy: bool) -> None:
    async with connect_ws(server, dev_key, legacy) as t:
        await t.subscribe("1", """subscription { jobEvents(filter: {queue: "sub",
            types: ["jobs.submitted", "jobs.completed"]}) { type seedType queue jobId } }""")
        await subscribers(app, 1)
        await jobs.submit(deps, JobSpec("other", "t", {}))  # filtered out
        r = await jobs.submit(deps, JobSpec("sub", "t", {}))
        first = (await t.next())["data"]["jobEvents"]
        assert first == {"type": "jobs.submitted", "seedType": None, "queue": "sub",
                         "jobId": str(r.submitted.id)}
        (c,) = await jobs.claim(deps, "w", ["sub"], 1)  # jobs.started: filtered out
        await jobs.complete(deps, [Outcome(c.id, c.token, True, None)])
        done = (await t.next())["data"]["jobEvents"]
        assert (done["type"], done["seedType"]) == ("jobs.completed", "job_completed")


async def test_job_event_batches_subscription(server: str, app: Starlette, deps: Deps,
                                             dev_key: str) -> None:
    async with connect_ws(server, dev_key) as t:
        await t.subscribe("1", """subscription { jobEventBatches(filter: {queue: "bsub",
            types: ["jobs.submitted"]}, windowMs: 200) { count dropped events { type jobId } } }""")
        await subscribers(app, 1)
        await jobs.submit(deps, JobSpec("other", "t", {}))  # filtered out
        made = await jobs.submit_many(deps, [JobSpec("bsub", "t", {"i": i}) for i in range(5)])
        want = {str(r.submitted.id) for r in made}
        seen: list[str] = []
        while len(seen) < len(want):
            b = (await t.next())["data"]["jobEventBatches"]
            assert b["count"] == len(b["events"]) >= 1 and b["dropped"] == 0
            assert {e["type"] for e in b["events"]} == {"jobs.submitted"}
            seen += [e["jobId"] for e in b["events"]]
        assert sorted(seen) == sorted(want)  # each once, none from the other queue
        await t.subscribe("2", "subscription { jobEventBatches(windowMs: 1) { count } }")
        bad = await t.next()
        assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_job_updated_subscription(server: str, deps: Deps, dev_key: str) -> None:
    r = await jobs.submit(deps, JobSpec("ju", "t", {}))
    async with connect_ws(server, dev_key) as t:
        await t.subscribe("1", "subscription($id: ID!) { jobUpdated(id: $id) { id status } }",
                          {"id": str(r.submitted.id)})
        assert (await t.next())["data"]["jobUpdated"]["status"] == "PENDING"
        (c,) = await jobs.claim(deps, "w", ["ju"], 1)

        async def status_after_stale_pending() -> str:
            # jobs.submitted may reach the feed after the subscription started (the relay
            # publishes when it publishes); its re-read may still see PENDING, once
            status = (await t.next())["data"]["jobUpdated"]["status"]
            if status == "PENDING":
                status = (await t.next())["data"]["jobUpdated"]["status"]
            return str(status)

        assert await status_after_stale_pending() == "PROCESSING"
        await jobs.complete(deps, [Outcome(c.id, c.token, True, None)])
        # Each event triggers a re-read of the row when it reaches the feed: if the late
        # jobs.submitted already read PROCESSING, jobs.started's re-read may still come before
        # the completion's, saying PROCESSING again (never anything else, and at most once).
        stale = []
        while (status := (await t.next())["data"]["jobUpdated"]["status"]) != "COMPLETED":
            stale.append(status)
            assert stale == ["PROCESSING"], stale


async def test_queue_stats_subscription_snapshots_and_backlog(
        server: str, app: Starlette, deps: Deps, admin_key: str, dev_key: str) -> None:
    from jobline.shared.events.worker_events import emit_backlog

    await jobs.submit(deps, JobSpec("qs", "t", {}))
    async with connect_ws(server, admin_key) as t:
        # a long interval: the second message can only come from the backlog event
        await t.subscribe("1", 'subscription { queueStats(queue: "qs", intervalMs: 600000) '
                               "{ name ready health } }")
        assert (await t.next())["data"]["queueStats"] == {"name": "qs", "ready": 1,
                                                          "health": "healthy"}
        await subscribers(app, 1)
        await jobs.submit(deps, JobSpec("qs", "t", {}))
        await emit_backlog(deps)
        assert (await t.next())["data"]["queueStats"]["ready"] == 2
    async with connect_ws(server, dev_key) as t:
        await t.subscribe("1", 'subscription { queueStats(queue: "qs") { name } }')
        msg = orjson.loads(await asyncio.wait_for(t.ws.recv(), 10))
        # a resolver error is an execution result with errors (not a protocol "error")
        assert msg["type"] == "next" and msg["payload"]["data"] is None
        assert msg["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_worker_events_subscription(server: str, app: Starlette, deps: Deps,
                                          admin_key: str) -> None:
    from jobline.shared.events import worker_events
    async with connect_ws(server, admin_key) as t:
        await t.subscribe("1", "subscription { workerEvents { type seedType data } }")
        await subscribers(app, 1)
        await worker_events.worker_started(deps, "w-1", {"queues": ["a"]})
        ev = (await t.next())["data"]["workerEvents"]
        assert (ev["type"], ev["seedType"]) == ("workers.started", "worker_started")


@pytest.mark.parametrize("key", [None, "jl_not_a_key"])
async def test_websocket_connection_init_needs_a_valid_key(server: str, key: str | None) -> None:
    async with websockets.connect(f"ws://{server}/graphql",
                                  subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(orjson.dumps({"type": "connection_init",
                                    "payload": {"apiKey": key} if key else {}}).decode())
        with pytest.raises(websockets.ConnectionClosed) as exc:
            await asyncio.wait_for(ws.recv(), 10)
        assert exc.value.rcvd is not None and exc.value.rcvd.code == 4403
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=["graphql-ws"]) as ws:
        await ws.send(orjson.dumps({"type": "connection_init", "payload": {}}).decode())
        msg = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        assert msg["type"] == "connection_error"


async def test_audit_events_query(admin: httpx.AsyncClient, deps: Deps) -> None:
    from jobline.shared.events import audit
    from jobline.shared.events.outbox import Event

    job_id = uuid.uuid4()
    now = deps.clock.now_ms()
    evs = [Event(uuid.uuid4(), t, now + i, job_id=job_id, queue="aq", job_type="t")
           for i, t in enumerate(("jobs.submitted", "jobs.started", "jobs.completed"))]
    async with deps.pool.acquire() as conn, conn.transaction():
        await audit.store(conn, evs)
    q = """query($j: ID!, $after: String) { auditEvents(jobId: $j, first: 2, after: $after) {
        events nextCursor } }"""
    p1 = (await gql(admin, q, {"j": str(job_id)}))["data"]["auditEvents"]
    p2 = (await gql(admin, q, {"j": str(job_id), "after": p1["nextCursor"]}))["data"][
        "auditEvents"]
    assert [e["type"] for e in p1["events"] + p2["events"]] == [
        "jobs.completed", "jobs.started", "jobs.submitted"]  # newest first, each once
    bad = await gql(admin, '{ auditEvents(type: "nope") { nextCursor } }')
    assert code(bad) == "BAD_USER_INPUT"


async def test_job_progress_subscription(server: str, deps: Deps, dev_key: str) -> None:
    from jobline.shared.core import progress

    r = await jobs.submit(deps, JobSpec("jp", "t", {}))
    (c,) = await jobs.claim(deps, "w", ["jp"], 1)
    async with connect_ws(server, dev_key) as t:
        await t.subscribe("1", """subscription($id: ID!) { jobProgress(jobId: $id) {
            jobId attempt fraction message logs { message } logsDropped } }""",
                          {"id": str(r.submitted.id)})
        assert (await t.next())["data"]["jobProgress"] is None  # nothing reported yet
        await progress.record(deps, [progress.ProgressReport(
            c.id, c.token, 0.25, "a quarter", [(1, "password=hunter2 used")])])
        got = (await t.next())["data"]["jobProgress"]
        assert got == {"jobId": str(c.id), "attempt": 1, "fraction": 0.25,
                       "message": "a quarter", "logs": [{"message": "password=*** used"}],
                       "logsDropped": 0}
        await t.subscribe("2", 'subscription { jobProgress(jobId: '
                               '"00000000-0000-0000-0000-000000000000") { fraction } }')
        msg = orjson.loads(await asyncio.wait_for(t.ws.recv(), 10))
        assert msg["type"] in ("next", "error"), msg
        errors = msg["payload"]["errors"] if msg["type"] == "next" else msg["payload"]
        assert errors[0]["extensions"]["code"] == "NOT_FOUND"
