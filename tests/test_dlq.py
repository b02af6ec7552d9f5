"""The dead-letter queue against real PostgreSQL + Valkey: terminal failures land there with their
history; list/filter/page, CSV export, retry and delete (one and bulk, set-based)."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from jobline.api import schemas
from jobline.api.admin import CSV_COLUMNS
from jobline.client import Client
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome, Status
from jobline.shared.platform.clock import FakeClock, to_dt
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, _init_conn
from jobline.shared.platform.errors import IllegalTransition, NotFound
from jobline.shared.platform.redis_client import is_cluster
from jobline.shared.retry import dlq

HOUR = 3_600_000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(backoff_base_ms=1, backoff_cap_ms=1)


def spec(queue: str = "q", job_type: str = "t", **kw: Any) -> JobSpec:
    return JobSpec(queue=queue, job_type=job_type, payload=kw.pop("payload", {"n": 1}), **kw)


async def dead(deps: Deps, n: int, queue: str = "q", job_type: str = "t",
               error_type: str = "boom", error: str = "it broke", **kw: Any) -> list[uuid.UUID]:
    """``n`` jobs dead-lettered through the real path: submit, claim, a final failure."""
    subs = await jobs.submit_many(deps, [spec(queue, job_type, **kw) for _ in range(n)])
    claimed = await jobs.claim(deps, "w", [queue], n)
    assert len(claimed) == n
    rep = await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error=error,
                                         error_type=error_type, final=True) for c in claimed])
    assert set(rep.statuses.values()) == {Status.DEAD_LETTER}
    return [s.submitted.id for s in subs]


async def status_of(deps: Deps, job_id: uuid.UUID) -> str:
    return str(await deps.pool.fetchval("SELECT status FROM jobs WHERE id = $1", job_id))


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


# --- core ----------------------------------------------------------------------------------------


async def test_last_attempt_dead_letters_with_full_history(deps: Deps, clock: FakeClock) -> None:
    [s] = await jobs.submit_many(deps, [spec(max_attempts=2)])
    for n in (1, 2):
        [c] = await jobs.claim(deps, "w", ["q"], 1)
        clock.advance(10)
        rep = await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error=f"boom {n}",
                                             error_type="timeout")], [c.attempt])
        clock.advance(10)
    assert rep.statuses[s.submitted.id] == Status.DEAD_LETTER
    job = await jobs.get_job(deps, s.submitted.id)
    assert job.status == Status.DEAD_LETTER and job.completed_ms == clock.now_ms() - 10
    assert [(a.attempt, a.error) for a in job.attempts_history] == [(1, "boom 1"), (2, "boom 2")]
    assert (await deps.dispatch.depth(["q"]))["q"] == {"ready": 0, "delayed": 0, "leased": 0}
    page = await dlq.list_dead_letters(deps)
    assert [j.id for j in page.jobs] == [s.submitted.id]


async def test_retry_from_dlq_and_its_refusals(deps: Deps) -> None:
    [d] = await dead(deps, 1)
    [s] = await jobs.submit_many(deps, [spec()])
    assert await dlq.retry_from_dlq(deps, d) == Status.PENDING
    assert await status_of(deps, d) == "pending"
    with pytest.raises(IllegalTransition):
        await dlq.retry_from_dlq(deps, d)
    with pytest.raises(IllegalTransition):
        await dlq.retry_from_dlq(deps, s.submitted.id)
    with pytest.raises(NotFound):
        await dlq.retry_from_dlq(deps, uuid.uuid4())
    # fresh attempts, claimable again in submit order
    claimed = await jobs.claim(deps, "w", ["q"], 10)
    assert [(c.id, c.attempt) for c in claimed] == [(d, 1), (s.submitted.id, 1)]


async def test_bulk_retry_of_10k_is_one_statement_and_one_script(
        deps: Deps, settings: Settings) -> None:
    """Seed criterion: bulk retry of 10,000 DLQ jobs is set-based: one statement, one script.
    (Its speed, target < 2 s, is measured by ``bench/suite.py --only dlq``, not asserted here.)"""
    n = 10_000
    subs = await jobs.submit_many(deps, [spec(payload={"i": i}) for i in range(n)])
    # Fabricate the state 10k exhausted jobs leave (the real path is tested above).
    now = to_dt(deps.clock.now_ms())
    await deps.pool.execute(
        """UPDATE jobs SET status = 'dead_letter', attempts = max_attempts, completed_at = $1,
                  error = 'x', error_type = 'boom'""", now)
    await deps.redis.delete(deps.dispatch.keys("q").ready)

    queries: list[str] = []

    async def init(conn: asyncpg.Connection) -> None:
        await _init_conn(conn)
        conn.add_query_logger(lambda q: queries.append(q.query))

    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2, init=init)
    assert pool is not None
    counted = Deps(pool=pool, redis=deps.redis, dispatch=deps.dispatch, clock=deps.clock,
                   settings=deps.settings)
    try:
        queries.clear()  # the pool's own setup queries are not the operation's
        before = await _commandstats(deps)
        retried = await dlq.retry_dead_letters(counted, dlq.DlqFilter(queue="q"))
        after = await _commandstats(deps)
    finally:
        await pool.close()
    assert len(retried) == n
    # asyncpg adds its own housekeeping (type introspection, the pool's reset on release); every
    # statement that reads or writes jobs is ours, and there is exactly one
    ours = [q for q in queries if re.search(r"\bjobs\b", q)]
    assert len(ours) == 1 and ours[0].lstrip().startswith("UPDATE jobs")
    calls = {k: after[k]["calls"] - before.get(k, {}).get("calls", 0)
             for k in after if k.startswith("cmdstat_") and k != "cmdstat_info"}
    # commandstats also counts the commands a script runs, so check the script calls: one
    # enqueue script for the one queue carries all 10k jobs
    assert calls["cmdstat_evalsha"] == 1 and calls.get("cmdstat_eval", 0) == 0
    assert calls["cmdstat_zadd"] == n
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE status = 'pending' AND attempts = 0") == n
    assert (await deps.dispatch.depth(["q"]))["q"]["ready"] == n
    first = await jobs.claim(deps, "w", ["q"], 3)
    assert [c.id for c in first] == [s.submitted.id for s in subs[:3]]


# --- REST ----------------------------------------------------------------------------------------


async def test_list_filters_and_pages(http: httpx.AsyncClient, deps: Deps,
                                      clock: FakeClock) -> None:
    t0 = clock.now_ms()
    a = await dead(deps, 3, queue="a", job_type="t1", error_type="timeout")
    clock.advance(HOUR)
    b = await dead(deps, 2, queue="b", job_type="t2", error_type="validation_error")
    await jobs.submit_many(deps, [spec("a", "t1")])  # pending: never listed

    async def ids(**params: Any) -> list[str]:
        resp = await http.get("/api/v1/admin/dlq", params=params)
        assert resp.status_code == 200, resp.text
        schemas.DlqListOut.model_validate(resp.json())
        assert all(j["status"] == "dead_letter" for j in resp.json()["jobs"])
        return [j["id"] for j in resp.json()["jobs"]]

    newest_first = [str(i) for i in reversed(a + b)]
    assert await ids() == newest_first
    assert await ids(queue="a") == [str(i) for i in reversed(a)]
    assert await ids(jobType="t2") == [str(i) for i in reversed(b)]
    assert await ids(errorType="validation_error") == [str(i) for i in reversed(b)]
    assert await ids(**{"from": iso(t0 + HOUR // 2)}) == [str(i) for i in reversed(b)]
    assert await ids(to=iso(t0 + HOUR // 2)) == [str(i) for i in reversed(a)]
    assert await ids(queue="a", errorType="validation_error") == []
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"pageSize": 2}
        if cursor:
            params["cursor"] = cursor
        body = (await http.get("/api/v1/admin/dlq", params=params)).json()
        seen += [j["id"] for j in body["jobs"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == newest_first
    for params, field in [({"from": "yesterday"}, "from"), ({"pageSize": 0}, "pageSize"),
                          ({"queue": "bad name"}, "queue"), ({"cursor": "x"}, "cursor"),
                          ({"from": iso(t0 + HOUR), "to": iso(t0)}, "to")]:
        resp = await http.get("/api/v1/admin/dlq", params=params)
        assert resp.status_code == 422, (params, resp.text)
        assert resp.json()["error"]["field"] == field


async def test_retry_from_dlq_endpoint(http: httpx.AsyncClient, deps: Deps) -> None:
    [d] = await dead(deps, 1)
    resp = await http.post(f"/api/v1/admin/jobs/{d}/retry-from-dlq")
    assert (resp.status_code, resp.json()) == (200, {"jobId": str(d), "status": "pending"})
    resp = await http.post(f"/api/v1/admin/jobs/{d}/retry-from-dlq")
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "conflict"
    resp = await http.post(f"/api/v1/admin/jobs/{uuid.uuid4()}/retry-from-dlq")
    assert resp.status_code == 404


async def test_bulk_retry_and_delete_by_ids_and_filter(http: httpx.AsyncClient,
                                                      deps: Deps) -> None:
    a = await dead(deps, 3, queue="a", error_type="timeout")
    b = await dead(deps, 2, queue="b", error_type="validation_error",
                   idempotency_key=None)
    [keyed] = await dead(deps, 1, queue="b", error_type="validation_error",
                         idempotency_key="k-1")
    [live] = await jobs.submit_many(deps, [spec("a")])
    # ids: only the dead-lettered ones among them are retried
    resp = await http.post("/api/v1/admin/dlq/retry",
                           json={"ids": [str(a[0]), str(live.submitted.id)]})
    assert resp.status_code == 200, resp.text
    schemas.DlqBulkOut.model_validate(resp.json())
    assert resp.json() == {"count": 1, "jobIds": [str(a[0])]}
    # filter
    resp = await http.post("/api/v1/admin/dlq/retry", json={"filter": {"queue": "a"}})
    assert resp.json()["count"] == 2
    assert {await status_of(deps, i) for i in a} == {"pending"}
    assert (await deps.dispatch.depth(["a"]))["a"]["ready"] == 4
    # delete by filter takes the history and the idempotency key with it
    resp = await http.post("/api/v1/admin/dlq/delete",
                           json={"filter": {"errorType": "validation_error"}})
    assert resp.json()["count"] == 3
    gone = [*b, keyed]
    assert await deps.pool.fetchval("SELECT count(*) FROM jobs WHERE id = ANY($1)", gone) == 0
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM job_attempts WHERE job_id = ANY($1)", gone) == 0
    again = await jobs.submit(deps, spec("b", idempotency_key="k-1"))
    assert not again.submitted.duplicate
    # delete by ids leaves other jobs alone
    [d] = await dead(deps, 1, queue="c")
    resp = await http.post("/api/v1/admin/dlq/delete", json={"ids": [str(d), str(a[1])]})
    assert resp.json() == {"count": 1, "jobIds": [str(d)]}
    assert await status_of(deps, a[1]) == "pending"


@pytest.mark.parametrize(("body", "status", "field"), [
    ({}, 422, "ids"),
    ({"ids": ["00000000-0000-0000-0000-000000000000"], "filter": {}}, 422, "ids"),
    ({"ids": []}, 422, "ids"),
    ({"ids": ["nope"]}, 422, "ids[0]"),
    ({"filter": {"queue": "a", "colour": "red"}}, 422, "filter.colour"),
    ({"filter": {"from": 1700000000}}, 422, "filter.from"),
    (None, 400, None),
])
async def test_bulk_bad_input_is_4xx_naming_the_field(http: httpx.AsyncClient, deps: Deps,
                                                     body: Any, status: int,
                                                     field: str | None) -> None:
    [d] = await dead(deps, 1)
    for op in ("retry", "delete"):
        resp = await http.post(f"/api/v1/admin/dlq/{op}", json=body)
        assert resp.status_code == status, resp.text
        assert resp.json()["error"].get("field") == field
    assert await status_of(deps, d) == "dead_letter"


async def test_csv_export(http: httpx.AsyncClient, deps: Deps) -> None:
    await dead(deps, 2, queue="a", error="=HYPERLINK(\"http://evil\")",
               payload={"to": "x@example.com"})
    await dead(deps, 1, queue="b", error="multi\nline, with \"quotes\"")
    resp = await http.get("/api/v1/admin/dlq.csv")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0] == CSV_COLUMNS
    by_queue = [dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows[1:]]
    assert sorted(r["queue"] for r in by_queue) == ["a", "a", "b"]
    a_row = next(r for r in by_queue if r["queue"] == "a")
    assert a_row["error"] == "'=HYPERLINK(\"http://evil\")"  # no formula in a spreadsheet
    assert a_row["payload"] == '{"to":"x@example.com"}' and a_row["errorType"] == "boom"
    b_row = next(r for r in by_queue if r["queue"] == "b")
    assert b_row["error"] == "multi\nline, with \"quotes\""
    only_b = list(csv.reader(io.StringIO((await http.get(
        "/api/v1/admin/dlq.csv", params={"queue": "b"})).text)))
    assert len(only_b) == 2
    resp = await http.get("/api/v1/admin/dlq.csv", params={"from": "soon"})
    assert resp.status_code == 422 and resp.json()["error"]["field"] == "from"


async def test_csv_export_streams_more_than_a_page(http: httpx.AsyncClient, deps: Deps) -> None:
    await dead(deps, 2_500)
    rows = list(csv.reader(io.StringIO((await http.get("/api/v1/admin/dlq.csv")).text)))
    assert len(rows) == 2_501 and len({r[0] for r in rows[1:]}) == 2_500


async def test_client_dead_letter_methods(deps: Deps, clock: FakeClock) -> None:
    client = Client(deps)
    try:
        a = await dead(deps, 2, queue="a")
        b = await dead(deps, 2, queue="b", job_type="t2")
        page = await client.dead_letters(queue="a")
        assert [j.id for j in page.jobs] == list(reversed(a))
        assert len((await client.dead_letters(page_size=3)).jobs) == 3
        assert await client.retry_from_dlq(str(a[0])) == Status.PENDING
        assert await client.retry_dead_letters([a[1]]) == [a[1]]
        assert sorted(await client.delete_dead_letters(job_type="t2")) == sorted(b)
        assert (await client.dead_letters()).jobs == []
    finally:
        await client.close()


async def _commandstats(deps: Deps) -> dict[str, Any]:
    """INFO commandstats of the node that holds queue ``q`` (on a cluster, the one master that
    serves its slot)."""
    if not is_cluster(deps.redis):
        return dict(await deps.redis.info("commandstats"))
    node = deps.redis.get_node_from_key(deps.dispatch.keys("q").ready)
    return dict(await deps.redis.info("commandstats", target_nodes=node))
