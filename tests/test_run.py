"""`make run` end to end: `jobline run` on embedded PostgreSQL + Valkey, a job submitted with HTTP
completes, Ctrl-C stops everything, and a second start resumes with the data intact."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jobline.testing import wait_until

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def home() -> Iterator[Path]:
    # Not pytest's tmp dir: PostgreSQL runs as another user and needs to traverse the path.
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    d = Path(tempfile.mkdtemp(prefix="jobline-run-", dir=base))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def start(home: Path, port: int, **extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(JOBLINE_HOME=str(home), JOBLINE_PORT=str(port), JOBLINE_SHUTDOWN_GRACE_S="5",
               **extra)
    return subprocess.Popen([sys.executable, "-m", "jobline", "run", "--processes", "1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


async def ready(base: str) -> bool:
    try:
        async with httpx.AsyncClient() as c:
            return (await c.get(f"{base}/readyz")).status_code == 200
    except httpx.TransportError:
        return False


def read_until(p: subprocess.Popen[str], text: str) -> str:
    """The output up to and including the first line containing ``text`` (or all of it, if the
    process ends first)."""
    assert p.stdout is not None
    lines = []
    for line in p.stdout:
        lines.append(line)
        if text in line:
            break
    return "".join(lines)


def stop(p: subprocess.Popen[str]) -> str:
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=90)
    assert p.returncode == 0, out
    return out


async def test_run_serves_processes_stops_and_resumes(home: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    p = start(home, port)
    try:
        await wait_until(lambda: ready(base), timeout=90, message="API ready")
        # make run created a local admin key on first start and kept it in JOBLINE_HOME
        key = (home / "admin.key").read_text().strip()
        async with httpx.AsyncClient(base_url=base) as c:
            assert (await c.get("/api/v1/queues")).status_code == 401
            c.headers["X-Api-Key"] = key
            r = await c.post("/api/v1/jobs", json={
                "queue": "email", "jobType": "send_welcome_email",
                "payload": {"userId": 123, "email": "user@example.com"}})
            assert r.status_code == 201, r.text
            job_id = r.json()["jobId"]

            async def completed() -> dict[str, object] | None:
                body = (await c.get(f"/api/v1/jobs/{job_id}")).json()
                return body if body["status"] == "completed" else None

            job = await wait_until(completed, timeout=30, message="email job completed")
            assert job["result"]["delivery"] == "file"  # type: ignore[index]

            # the job's events are in the audit log (the outbox) ...
            async def audited() -> list[str] | None:
                body = (await c.get("/api/v1/audit", params={"jobId": job_id})).json()
                types = sorted(e["type"] for e in body["events"])
                return types if "jobs.completed" in types else None

            types = await wait_until(audited, timeout=60, message="job events in the audit log")
            assert types == ["jobs.completed", "jobs.started", "jobs.submitted"]

            # ... and the relay carries them through (it folds the rollups and alerts: no
            # consumer process, no consumer group of Jobline's own)
            async def relayed_and_consumed() -> bool:
                body = (await c.get("/api/v1/events/lag")).json()
                return body["outbox"]["pending"] == 0 and body["groups"] == []

            await wait_until(relayed_and_consumed, timeout=60, message="events consumed")
            assert list((home / "outbox").glob("*.eml"))
    finally:
        out = stop(p)
    assert "Jobline is running" in out and "stopped" in out
    assert key in out  # printed for the user
    assert (home / "services.json").exists()

    p = start(home, port)
    try:
        # The banner promises a working API: the moment it is printed, /healthz answers.
        head = await asyncio.wait_for(asyncio.to_thread(read_until, p, "Jobline is running"),
                                      120)
        assert "Jobline is running" in head, head
        async with httpx.AsyncClient() as c:
            assert (await c.get(f"{base}/healthz")).status_code == 200
        await wait_until(lambda: ready(base), timeout=90, message="API ready again")
        async with httpx.AsyncClient(base_url=base,
                                     headers={"X-Api-Key": key}) as c:  # same key after restart
            r = await c.get(f"/api/v1/jobs/{job_id}")
            assert r.status_code == 200 and r.json()["status"] == "completed"
    finally:
        stop(p)


async def test_run_with_events_off_starts_no_relay_and_writes_no_events(home: Path) -> None:
    import psutil

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    p = start(home, port, JOBLINE_EVENTS="off")
    try:
        await wait_until(lambda: ready(base), timeout=90, message="API ready")
        children = [" ".join(c.cmdline()) for c in psutil.Process(p.pid).children()]
        assert any("jobline worker" in c for c in children), children
        assert not any("jobline relay" in c or "jobline consumer" in c for c in children)
        key = (home / "admin.key").read_text().strip()
        async with httpx.AsyncClient(base_url=base, headers={"X-Api-Key": key}) as c:
            r = await c.post("/api/v1/jobs", json={
                "queue": "email", "jobType": "send_welcome_email",
                "payload": {"userId": 1, "email": "user@example.com"}})
            assert r.status_code == 201, r.text
            job_id = r.json()["jobId"]

            async def completed() -> bool:
                return bool((await c.get(f"/api/v1/jobs/{job_id}")).json()["status"]
                            == "completed")

            await wait_until(completed, timeout=30, message="email job completed")
            body = (await c.get("/api/v1/audit", params={"jobId": job_id})).json()
            assert body["events"] == []
    finally:
        out = stop(p)
    assert "events:    off" in out
