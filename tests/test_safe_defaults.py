"""Safe defaults: an evicting Redis is refused by every process entry; submissions over a
queue's backlog cap, or while Postgres is down, get 503 + Retry-After and store nothing; a submit
Postgres committed is acknowledged even with Redis down; JSON only, never pickle or eval."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import jobline
from jobline.api.app import create_app
from jobline.client import Client
from jobline.local import EmbeddedValkey
from jobline.shared.core import jobs, maintenance
from jobline.shared.core.models import JobSpec
from jobline.shared.dispatch import backpressure
from jobline.shared.dispatch.redis_dispatch import Dispatch
from jobline.shared.platform.clock import SYSTEM_CLOCK
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect, create_pool, create_redis
from jobline.shared.platform.errors import ConfigError
from jobline.testing import serve_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- noeviction --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evicting_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private Valkey reconfigured to evict (allkeys-lru), as a misconfigured cache would be."""
    import redis

    v = EmbeddedValkey(tmp_path_factory.mktemp("evicting"), persist=False)
    url = v.start()
    try:
        r = redis.Redis.from_url(url)
        r.config_set("maxmemory-policy", "allkeys-lru")
        r.close()
        yield url
    finally:
        v.stop()


async def test_connect_refuses_an_evicting_redis(settings: Settings, evicting_redis: str) -> None:
    bad = settings.with_(redis_url=evicting_redis)
    with pytest.raises(ConfigError, match=r"maxmemory-policy is 'allkeys-lru'.*noeviction"):
        await connect(bad)
    # the API (its lifespan connects) and the in-process Client refuse too
    app = create_app(bad)
    with pytest.raises(ConfigError, match="noeviction"):
        async with app.router.lifespan_context(app):
            pass
    with pytest.raises(ConfigError, match="noeviction"):
        await Client.connect(bad)
    # the same server set to noeviction is accepted: the check reads the live policy
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(evicting_redis)
    await r.config_set("maxmemory-policy", "noeviction")
    try:
        ok = await connect(bad)
        await ok.close()
    finally:
        await r.config_set("maxmemory-policy", "allkeys-lru")
        await r.aclose()


async def test_every_process_entry_refuses_an_evicting_redis(
        settings: Settings, evicting_redis: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": settings.database_url or "",
           "REDIS_URL": evicting_redis, "JOBLINE_HOME": str(tmp_path),
           "JOBLINE_REDIS_PREFIX": settings.redis_prefix}
    commands = [["api", "--port", str(free_port())], ["worker", "--app", "jobline.demo"],
                ["scheduler"], ["relay"], ["reconcile"], ["keys", "list"]]

    async def run(args: list[str]) -> tuple[list[str], int, str]:
        p = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jobline", *args, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        try:
            _, err = await asyncio.wait_for(p.communicate(), 60)
        except TimeoutError:
            p.kill()
            await p.wait()
            raise AssertionError(f"`jobline {' '.join(args)}` did not refuse") from None
        return args, p.returncode or 0, err.decode()

    for args, code, err in await asyncio.gather(*(run(c) for c in commands)):
        assert code != 0, args
        assert "noeviction" in err, (args, err[-2000:])


# --- backpressure ------------------------------------------------------------------------------


async def test_submit_over_the_queue_cap_is_503_and_stores_nothing(settings: Settings) -> None:
    d = await connect(settings.with_(max_queue_depth=3))
    try:
        async for http in serve_app(create_app(d.settings, deps=d)):
            for i in range(3):
                r = await http.post("/api/v1/jobs", json={"queue": "full", "jobType": "t",
                                                          "payload": {"i": i}})
                assert r.status_code == 201, r.text
            # delayed jobs count too: they are backlog
            assert await backpressure.queue_depths(d, ["full"]) == {"full": 3}
            refused = await http.post("/api/v1/jobs", json={"queue": "full", "jobType": "t"})
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "unavailable"
            assert "full" in refused.json()["error"]["message"]
            assert refused.headers["Retry-After"] == str(backpressure.RETRY_AFTER_S)
            # bulk and batches: all-or-nothing, nothing stored
            bulk = await http.post("/api/v1/jobs/bulk", json={"jobs": [
                {"queue": "other", "jobType": "t"}, {"queue": "full", "jobType": "t"}]})
            assert bulk.status_code == 503
            batch = await http.post("/api/v1/job-batches", json={"name": "b", "jobs": [
                {"queue": "full", "jobType": "t"}]})
            assert batch.status_code == 503
            assert await d.pool.fetchval("SELECT count(*) FROM jobs") == 3
            # another queue is not affected; a bulk that would cross the cap is refused whole
            ok = await http.post("/api/v1/jobs/bulk", json={"jobs": [
                {"queue": "other", "jobType": "t"} for _ in range(3)]})
            assert ok.status_code == 201
            over = await http.post("/api/v1/jobs/bulk", json={"jobs": [
                {"queue": "other2", "jobType": "t"} for _ in range(4)]})
            assert over.status_code == 503
            assert await d.pool.fetchval("SELECT count(*) FROM jobs") == 6
            # once workers make room, submissions are accepted again
            claimed = await jobs.claim(d, "w1", ["full"], 1)
            assert len(claimed) == 1
            again = await http.post("/api/v1/jobs", json={"queue": "full", "jobType": "t"})
            assert again.status_code == 201, again.text
    finally:
        await d.close()


async def test_per_queue_caps_override_the_global_one(settings: Settings) -> None:
    d = await connect(settings.with_(max_queue_depth=2, queue_depths={"big": 4, "free": 0}))
    try:
        assert backpressure.cap_of(d, "big") == 4 and backpressure.cap_of(d, "x") == 2
        async for http in serve_app(create_app(d.settings, deps=d)):
            async def submit(queue: str, n: int, http: httpx.AsyncClient = http) -> int:
                r = await http.post("/api/v1/jobs/bulk", json={"jobs": [
                    {"queue": queue, "jobType": "t"} for _ in range(n)]})
                return r.status_code
            assert [await submit("x", 2), await submit("x", 1)] == [201, 503]
            assert [await submit("big", 4), await submit("big", 1)] == [201, 503]
            assert await submit("free", 10) == 201  # 0: this queue is not capped
        assert await d.pool.fetchval("SELECT count(*) FROM jobs") == 16
    finally:
        await d.close()


async def _half_down(settings: Settings, *, pg: bool, redis: bool) -> Deps:
    assert settings.database_url and settings.redis_url
    dsn = f"postgresql://x@127.0.0.1:{free_port()}/x" if pg else settings.database_url
    url = f"redis://127.0.0.1:{free_port()}/0" if redis else settings.redis_url
    pool = await create_pool(dsn, min_size=0, max_size=2)
    r = create_redis(url)
    return Deps(pool=pool, redis=r, dispatch=Dispatch(r, settings.redis_prefix),
                clock=SYSTEM_CLOCK, settings=settings)


async def test_redis_down_submit_is_acknowledged_after_the_postgres_commit(
        settings: Settings, deps: Deps) -> None:
    """With the cap on and Redis unreachable, the depth check fails open and Postgres decides:
    a 201 means the row is committed (reconcile dispatches it later)."""
    half = await _half_down(settings.with_(max_queue_depth=10), pg=False, redis=True)
    try:
        async for http in serve_app(create_app(half.settings, deps=half)):
            one = await http.post("/api/v1/jobs", json={"queue": "q", "jobType": "t"})
            bulk = await http.post("/api/v1/jobs/bulk", json={"jobs": [
                {"queue": "q", "jobType": "t"}, {"queue": "q", "jobType": "t"}]})
            assert (one.status_code, bulk.status_code) == (201, 201), (one.text, bulk.text)
            ids = [one.json()["jobId"]] + [j["jobId"] for j in bulk.json()["jobs"]]
    finally:
        await half.close()
    rows = await deps.pool.fetch("SELECT id::text, status FROM jobs")
    assert sorted(r["id"] for r in rows) == sorted(ids)
    assert {r["status"] for r in rows} == {"pending"}
    await maintenance.reconcile(deps)
    assert await deps.redis.zcard(deps.dispatch.keys("q").ready) == 3


async def test_postgres_down_submit_is_503_never_2xx(settings: Settings, deps: Deps) -> None:
    _, key = await jobline.shared.security.auth.create_key(deps, "admin", "k")  # looked up while PG is up
    half = await _half_down(settings, pg=True, redis=False)
    try:
        async for http in serve_app(create_app(half.settings, deps=half), role=None):
            http.headers["X-Api-Key"] = key  # the 5 s auth cache knows it
            for path, body in [
                ("/api/v1/jobs", {"queue": "q", "jobType": "t"}),
                ("/api/v1/jobs/bulk", {"jobs": [{"queue": "q", "jobType": "t"}]}),
                ("/api/v1/job-batches", {"name": "b", "jobs": [{"queue": "q", "jobType": "t"}]}),
            ]:
                r = await http.post(path, json=body)
                assert r.status_code == 503, (path, r.status_code, r.text)
                assert int(r.headers["Retry-After"]) >= 1
    finally:
        await half.close()
    assert await deps.redis.zcard(deps.dispatch.keys("q").ready) == 0


# --- JSON only ---------------------------------------------------------------------------------

_FORBIDDEN = re.compile(
    r"\b(import\s+(c?pickle|marshal|shelve|dill)|from\s+(c?pickle|marshal|shelve|dill)\s+import"
    r"|pickle\.loads?|marshal\.loads?|(?<![.\w])eval\(|(?<![.\w])exec\(|yaml\.load\("
    r"|yaml\.unsafe_load|jsonpickle)")


def test_no_pickle_or_eval_anywhere_in_the_package() -> None:
    root = Path(jobline.__file__).parent
    offenders = []
    files = [*root.rglob("*.py"), *root.rglob("*.lua")]
    assert len(files) > 50
    for f in files:
        for n, line in enumerate(f.read_text().splitlines(), 1):
            code = line.split("#", 1)[0] if f.suffix == ".py" else line.split("--", 1)[0]
            if _FORBIDDEN.search(code):
                offenders.append(f"{f.relative_to(root)}:{n}: {line.strip()}")
    # Lua's loadstring is Redis-side eval of a string: forbidden too
    for f in root.rglob("*.lua"):
        assert "loadstring" not in f.read_text(), f
    assert offenders == []


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/v1/jobs"), ("POST", "/api/v1/jobs/bulk"), ("POST", "/api/v1/job-batches"),
    ("POST", "/api/v1/scheduled-jobs"), ("PUT", "/api/v1/retry-policies/some.type")])
async def test_non_json_bodies_are_refused_naming_the_body(http: object, method: str, path: str,
                                                           deps: Deps) -> None:
    import httpx

    assert isinstance(http, httpx.AsyncClient)
    pickled = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s."
    for content, ctype in [(pickled, "application/octet-stream"),
                           (b"queue=q&jobType=t", "application/x-www-form-urlencoded"),
                           (b"<job/>", "application/xml"),
                           (b'{"queue": "q", "jobType": "t"}', "text/plain")]:
        r = await http.request(method, path, content=content, headers={"Content-Type": ctype})
        assert r.status_code in (400, 415), (path, ctype, r.status_code, r.text)
        err = r.json()["error"]
        assert err.get("field") == "body" or "body" in err["message"].lower(), err
    assert await deps.pool.fetchval("SELECT count(*) FROM jobs") == 0
    assert await deps.pool.fetchval("SELECT count(*) FROM schedules") == 0
    assert await deps.pool.fetchval("SELECT count(*) FROM retry_policies") == 0


async def test_job_specs_round_trip_as_json_only(deps: Deps) -> None:
    """What reaches Redis is ids and numbers; payloads live in Postgres JSONB only."""
    await jobs.submit_many(deps, [JobSpec(queue="q", job_type="t", payload={"x": 1})])
    keys = [k async for k in deps.redis.scan_iter(match=f"{deps.settings.redis_prefix}*")]
    assert keys
    for k in keys:
        t = (await deps.redis.type(k)).decode()
        if t == "string":
            v = await deps.redis.get(k)
            assert v is None or not v.startswith(b"\x80"), k  # no pickle protocol header
