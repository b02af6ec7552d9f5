"""Remote workers: the ``/api/v1/worker/*`` protocol in-process, and real ``jobline worker
--remote`` processes against a real uvicorn API process (no database or Redis in their env)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio.cluster import RedisCluster

from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.redis_client import is_cluster
from jobline.shared.security.auth import create_key
from jobline.testing import wait_until


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(lease_ms=1500)


def noop(**kw: object) -> JobSpec:
    return JobSpec(queue="default", job_type="demo.noop", payload={}, **kw)  # type: ignore[arg-type]


async def counts(deps: Deps) -> dict[str, int]:
    return {r["status"]: r["n"] for r in await deps.pool.fetch(
        "SELECT status, count(*) AS n FROM jobs GROUP BY status")}


# --- the protocol, in-process ----------------------------------------------------------------


async def test_claim_complete_is_fenced_by_token(http: httpx.AsyncClient, deps: Deps) -> None:
    [sub] = await jobs.submit_many(deps, [noop()])
    r = await http.post("/api/v1/worker/claim", json={"workerId": "w1", "queues": ["default"],
                                                      "n": 5})
    assert r.status_code == 200, r.text
    [job] = r.json()["jobs"]
    assert job["id"] == str(sub.submitted.id) and job["attempt"] == 1
    assert r.json()["leaseMs"] == 1500
    stale = {"id": job["id"], "token": job["token"] - 1, "status": "ok", "result": {"x": 1}}
    r = await http.post("/api/v1/worker/complete", json={"outcomes": [stale]})
    assert r.json()["rejected"] == [job["id"]]
    good = {**stale, "token": job["token"]}
    r = await http.post("/api/v1/worker/complete", json={"outcomes": [good]})
    assert r.json()["completed"] == [job["id"]] and r.json()["rejected"] == []
    j = await jobs.get_job(deps, sub.submitted.id)
    assert j.status == "completed" and j.result == {"x": 1}
    assert j.result_expires_ms is None  # no TTL at any level: kept
    # a replay of the same outcome is rejected: the job was recorded completed exactly once
    r = await http.post("/api/v1/worker/complete", json={"outcomes": [good]})
    assert r.json()["rejected"] == [job["id"]]


async def test_a_retry_delay_beyond_the_calendar_is_refused_naming_the_field(
        http: httpx.AsyncClient, deps: Deps) -> None:
    # found by the OpenAPI fuzz test: now + 2^62 ms is past year 9999, and the 500 it caused
    # left the attempt unrecorded
    [sub] = await jobs.submit_many(deps, [noop()])
    r = await http.post("/api/v1/worker/claim", json={"workerId": "w1", "queues": ["default"],
                                                      "n": 1})
    [job] = r.json()["jobs"]
    bad = {"id": job["id"], "token": job["token"], "status": "fail", "error": "x",
           "retryAfterMs": 2**62}
    r = await http.post("/api/v1/worker/complete", json={"outcomes": [bad]})
    assert r.status_code == 422 and "retryAfterMs" in r.text, r.text
    assert (await jobs.get_job(deps, sub.submitted.id)).status == "processing"
    r = await http.post("/api/v1/worker/complete", json={"outcomes": [{**bad, "retryAfterMs": 5}]})
    assert r.status_code == 200 and r.json()["failed"] == [job["id"]], r.text


async def test_failed_outcome_retries_then_dead_letters(http: httpx.AsyncClient,
                                                        deps: Deps) -> None:
    [sub] = await jobs.submit_many(deps, [noop(max_attempts=2, backoff={"baseMs": 0})])
    for expected in ("pending", "dead_letter"):
        [job] = (await http.post("/api/v1/worker/claim",
                                 json={"workerId": "w", "n": 1})).json()["jobs"]
        r = await http.post("/api/v1/worker/complete", json={"outcomes": [
            {"id": job["id"], "token": job["token"], "status": "fail", "error": "boom",
             "errorType": "boom"}]})
        assert r.json()["statuses"] == {job["id"]: expected}, r.text
        if expected == "pending":
            await wait_until(lambda: _ready(deps), message="retry back in ready")
    j = await jobs.get_job(deps, sub.submitted.id)
    assert j.attempts == 2 and j.error_type == "boom"


async def _ready(deps: Deps) -> bool:
    await deps.dispatch.promote(["default"], deps.clock.now_ms())
    return (await deps.dispatch.depth(["default"]))["default"]["ready"] == 1


async def test_heartbeat_extends_and_reports_lost_leases(http: httpx.AsyncClient,
                                                         deps: Deps) -> None:
    subs = await jobs.submit_many(deps, [noop(), noop()])
    claimed = (await http.post("/api/v1/worker/claim",
                               json={"workerId": "w", "n": 2})).json()["jobs"]
    assert len(claimed) == 2
    before = {r["id"]: r["lease_expires_at"] for r in await deps.pool.fetch(
        "SELECT id, lease_expires_at FROM jobs")}
    leases = [{"id": j["id"], "token": j["token"], "queue": j["queue"]} for j in claimed]
    leases[1]["token"] += 7  # a lease this worker does not hold (any more)
    r = await http.post("/api/v1/worker/heartbeat", json={
        "workerId": "w", "leases": leases, "info": {"concurrency": 2}})
    assert r.json()["lost"] == [claimed[1]["id"]]
    after = {r["id"]: r["lease_expires_at"] for r in await deps.pool.fetch(
        "SELECT id, lease_expires_at FROM jobs")}
    first = uuid.UUID(claimed[0]["id"])
    assert after[first] >= before[first]
    from jobline.worker.runtime import list_workers

    assert [w["id"] for w in await list_workers(deps)] == ["w"]
    assert {s.submitted.id for s in subs} == set(after)


async def test_release_gives_jobs_back_without_counting(http: httpx.AsyncClient,
                                                        deps: Deps) -> None:
    await jobs.submit_many(deps, [noop()])
    [job] = (await http.post("/api/v1/worker/claim", json={"workerId": "w"})).json()["jobs"]
    r = await http.post("/api/v1/worker/release",
                        json={"leases": [{"id": job["id"], "token": job["token"]}]})
    assert r.json()["released"] == [job["id"]]
    row = await deps.pool.fetchrow("SELECT status, attempts FROM jobs")
    assert (row["status"], row["attempts"]) == ("pending", 0)


async def test_wait_returns_when_a_submit_wakes_the_queue(http: httpx.AsyncClient,
                                                          deps: Deps) -> None:
    import asyncio

    waiter = asyncio.create_task(http.post("/api/v1/worker/wait", json={
        "workerId": "w", "queues": ["default"], "timeoutMs": 15_000}))
    await wait_until(lambda: _has_blocked_client(deps), message="long poll blocking")
    await jobs.submit_many(deps, [noop()])
    r = await waiter
    assert r.json() == {"woken": True}  # a timed-out wait answers {"woken": false}


async def _has_blocked_client(deps: Deps) -> bool:
    if is_cluster(deps.redis):  # the wait blocks on whichever node holds the queue's slot
        per_node: Any = await deps.redis.info("clients", target_nodes=RedisCluster.ALL_NODES)
        return any(int(i.get("blocked_clients", 0)) > 0 for i in per_node.values())
    info = await deps.redis.info("clients")
    return int(info.get("blocked_clients", 0)) > 0


@pytest.mark.parametrize(("body", "field"), [
    ({"workerId": "w", "n": 0}, "n"),
    ({"workerId": "w", "queues": ["bad name"]}, "queues[0]"),
    ({"n": 1}, "workerId"),
])
async def test_claim_rejects_bad_input_naming_the_field(http: httpx.AsyncClient, deps: Deps,
                                                        body: dict[str, object],
                                                        field: str) -> None:
    await jobs.submit_many(deps, [noop()])
    r = await http.post("/api/v1/worker/claim", json=body)
    assert r.status_code == 422 and r.json()["error"]["field"] == field
    assert await counts(deps) == {"pending": 1}  # nothing was claimed


async def test_complete_rejects_bad_outcome_naming_the_field(http: httpx.AsyncClient,
                                                             deps: Deps) -> None:
    r = await http.post("/api/v1/worker/complete", json={"outcomes": [
        {"id": str(uuid.uuid4()), "token": 1, "status": "maybe"}]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "outcomes[0].status"


# --- real processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stack:
    """A uvicorn API process over the test's stores, and remote workers that only know its URL."""

    def __init__(self, settings: Settings, home: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server_env = dict(
            os.environ, DATABASE_URL=settings.database_url or "",
            REDIS_URL=settings.redis_url or "", JOBLINE_REDIS_PREFIX=settings.redis_prefix,
            JOBLINE_HOME=str(home), JOBLINE_LEASE_MS="1500", JOBLINE_SWEEP_MS="200")
        # The remote worker gets no store URLs at all (and an empty home): it must not need them.
        self.worker_env = {k: v for k, v in os.environ.items()
                           if k not in ("DATABASE_URL", "REDIS_URL")}
        self.worker_env["JOBLINE_HOME"] = str(home / "remote-worker")
        self.health_file = home / "worker.alive"
        self.worker_env["JOBLINE_HEALTH_FILE"] = str(self.health_file)
        self.started: list[subprocess.Popen[bytes]] = []
        self.api_key = ""

    def _start(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([sys.executable, "-m", "jobline", *args], env=env,
                             start_new_session=True)
        self.started.append(p)
        return p

    def api(self) -> subprocess.Popen[bytes]:
        return self._start(["api", "--port", str(self.port)], self.server_env)

    def scheduler(self) -> subprocess.Popen[bytes]:
        return self._start(["scheduler"], self.server_env)

    def worker(self, *extra: str) -> subprocess.Popen[bytes]:
        return self._start(["worker", "--app", "jobline.demo", "--remote", self.url,
                            "--api-key", self.api_key, *extra], self.worker_env)

    def stop_all(self) -> None:
        for p in self.started:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture
async def stack(settings: Settings, tmp_path: Path, deps: Deps) -> AsyncIterator[Stack]:
    s = Stack(settings, tmp_path)
    # remote workers process jobs with a developer key (docs/security.md)
    _, s.api_key = await create_key(deps, "developer", "remote worker")
    s.api()

    async def up() -> bool:
        try:
            async with httpx.AsyncClient() as c:
                return (await c.get(f"{s.url}/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    try:
        await wait_until(up, timeout=30, message="API process ready")
        yield s
    finally:
        s.stop_all()


async def assert_each_completed_once(deps: Deps, n: int) -> None:
    rows = await deps.pool.fetch(
        """SELECT j.id, j.status, count(a.*) FILTER (WHERE a.outcome = 'completed') AS done
             FROM jobs j LEFT JOIN job_attempts a ON a.job_id = j.id GROUP BY j.id, j.status""")
    assert len(rows) == n
    assert all(r["status"] == "completed" and r["done"] == 1 for r in rows), rows


@pytest.mark.slow
async def test_remote_worker_process_runs_jobs_through_the_api(deps: Deps, stack: Stack) -> None:
    stack.worker("--concurrency", "20")
    n = 300
    await jobs.submit_many(deps, [noop() for _ in range(n)])
    await jobs.submit_many(deps, [JobSpec(queue="default", job_type="demo.flaky",
                                          payload={"failTimes": 1}, backoff={"baseMs": 0})])
    t0 = time.monotonic()

    async def done() -> bool:
        return (await counts(deps)) == {"completed": n + 1}

    await wait_until(done, timeout=90, message="all jobs completed by the remote worker")
    elapsed = time.monotonic() - t0
    await assert_each_completed_once(deps, n + 1)
    workers = {r["worker_id"] for r in await deps.pool.fetch("SELECT worker_id FROM jobs")}
    assert len(workers) == 1  # the one remote worker did it all
    flaky = await deps.pool.fetchval("SELECT attempts FROM jobs WHERE job_type = 'demo.flaky'")
    assert flaky == 2  # the failed first attempt went through the remote fail path
    assert stack.health_file.exists()  # the container health check's signal
    print(f"\nremote worker: {n + 1} jobs in {elapsed:.2f}s ({(n + 1) / elapsed:.0f} jobs/s)")


@pytest.mark.slow
async def test_remote_worker_sigkill_loses_nothing_and_completes_once(deps: Deps,
                                                                      stack: Stack) -> None:
    await jobs.submit_many(deps, [JobSpec(queue="default", job_type="demo.sleep",
                                          payload={"ms": 3_000}) for _ in range(6)])
    victim = stack.worker("--concurrency", "6")

    async def running() -> bool:
        return (await counts(deps)).get("processing", 0) == 6

    await wait_until(running, timeout=30, message="6 jobs processing in the remote victim")
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    stack.scheduler()
    stack.worker("--concurrency", "6")

    async def all_done() -> bool:
        return (await counts(deps)) == {"completed": 6}

    await wait_until(all_done, timeout=60, message="all jobs completed after the crash")
    await assert_each_completed_once(deps, 6)
    lost = await deps.pool.fetchval(
        "SELECT count(*) FROM job_attempts WHERE outcome = 'lease_expired'")
    assert lost == 6


@pytest.mark.slow
async def test_remote_worker_sigterm_is_a_warm_shutdown(deps: Deps, stack: Stack) -> None:
    await jobs.submit_many(deps, [JobSpec(queue="default", job_type="demo.sleep",
                                          payload={"ms": 2_000}) for _ in range(4)])
    w = stack.worker("--concurrency", "2")

    async def two_running() -> bool:
        return (await counts(deps)).get("processing", 0) == 2

    await wait_until(two_running, timeout=30, message="2 jobs processing")
    w.send_signal(signal.SIGTERM)
    assert w.wait(timeout=60) == 0
    c = await counts(deps)
    assert c.get("completed") == 2 and c.get("pending") == 2 and "processing" not in c


def test_remote_flags_are_documented() -> None:
    out = subprocess.run([sys.executable, "-m", "jobline", "worker", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--remote" in out and "--api-key" in out


async def test_remote_worker_sends_its_handlers_retry_settings(http: httpx.AsyncClient,
                                                                 deps: Deps) -> None:
    """The handler decorator's ``non_retryable`` and ``backoff`` (the policy's third level) apply
    to a job run by a remote worker as they do in-process (docs/retry-policy.md)."""
    from jobline import JobError
    from jobline.worker.registry import Registry
    from jobline.worker.remote import RemoteBackend
    from jobline.worker.runtime import Worker

    reg = Registry()

    @reg.job("picky", queue="remote", non_retryable=["bad_input"])
    async def picky(payload: dict[str, Any]) -> None:
        raise JobError("no such user", error_type="bad_input")

    @reg.job("patient", queue="remote", backoff={"baseMs": 3_600_000, "jitter": False})
    async def patient(payload: dict[str, Any]) -> None:
        raise JobError("try later", error_type="upstream_down")

    a, b = (r.submitted.id for r in await jobs.submit_many(deps, [
        JobSpec(queue="remote", job_type=t, payload={}, max_attempts=5)
        for t in ("picky", "patient")]))
    backend = RemoteBackend("http://jobline", api_key=http.headers["X-Api-Key"],
                            transport=http._transport)
    await backend.open()
    worker = Worker(backend, reg, queues=["remote"], concurrency=2)
    task = asyncio.create_task(worker.run())

    async def both_failed_once() -> bool:
        n = await deps.pool.fetchval(
            "SELECT count(*) FROM job_attempts WHERE job_id = ANY($1::uuid[])", [a, b])
        return n >= 2 and not worker.running and not worker.completer.pending
    try:
        await wait_until(both_failed_once, message="one failed attempt of each job")
    finally:
        worker.request_stop()
        await task
    ja, jb = await jobs.get_job(deps, a), await jobs.get_job(deps, b)
    assert (ja.status, ja.attempts, ja.error_type) == ("dead_letter", 1, "bad_input")
    assert (jb.status, jb.attempts) == ("scheduled", 1)
    assert jb.completed_ms is None and jb.scheduled_for_ms is not None
    finished = jb.attempts_history[0].finished_ms
    assert jb.scheduled_for_ms - finished == 3_600_000


async def test_remote_worker_sends_its_handlers_result_ttl(http: httpx.AsyncClient,
                                                           deps: Deps) -> None:
    [sub] = await jobs.submit_many(deps, [noop()])
    r = await http.post("/api/v1/worker/claim", json={"workerId": "w1", "queues": ["default"]})
    [job] = r.json()["jobs"]
    done = {"id": job["id"], "token": job["token"], "status": "ok", "result": 1,
            "resultTtl": 90}
    assert (await http.post("/api/v1/worker/complete",
                            json={"outcomes": [done]})).json()["completed"] == [job["id"]]
    j = await jobs.get_job(deps, sub.submitted.id)
    assert j.result_expires_ms is not None and j.completed_ms is not None
    assert j.result_expires_ms - j.completed_ms == 90_000
