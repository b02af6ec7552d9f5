"""Chaos fixtures: real jobline processes with the chaos handlers loaded, logs kept per process.

``make test`` runs the reduced subset; scenarios marked ``chaos_full`` (long or heavy) are
deselected unless ``JOBLINE_CHAOS=full`` (``make chaos``), which also scales the loads up.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_processes import Procs

from jobline.shared.platform.config import Settings
from jobline.testing import wait_until

FULL = os.environ.get("JOBLINE_CHAOS") == "full"
#: Load multiplier: ``make chaos`` runs every scenario with larger loads.
SCALE = int(os.environ.get("JOBLINE_CHAOS_SCALE") or (5 if FULL else 1))
#: What every chaos process runs with (short, so faults recover fast).
LEASE_MS = 1_500
SWEEP_MS = 200
TESTS_DIR = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if FULL:
        return
    keep = [i for i in items if i.get_closest_marker("chaos_full") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChaosProcs(Procs):
    """Procs whose workers also serve ``chaos.*`` and whose output goes to ``home/logs``."""

    def __init__(self, settings: Settings, home: Path) -> None:
        super().__init__(settings, home)
        self.home = home
        self.env.update(JOBLINE_LEASE_MS=str(LEASE_MS), JOBLINE_SWEEP_MS=str(SWEEP_MS))
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(TESTS_DIR), *filter(None, [os.environ.get("PYTHONPATH")])])
        (home / "logs").mkdir(exist_ok=True)

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = self.home / "logs" / f"{len(self.started):02d}-{args[0]}.log"
        with log.open("ab") as fh:
            p = subprocess.Popen([sys.executable, "-m", "jobline", *args],
                                 env={**self.env, **env}, start_new_session=True,
                                 stdout=fh, stderr=subprocess.STDOUT)
        self.started.append(p)
        return p

    def worker(self, *extra: str, **env: str) -> subprocess.Popen[bytes]:
        return self.start("worker", "--app", "jobline.demo", "--app", "chaos.handlers",
                          *extra, **env)

    def logs(self, p: subprocess.Popen[bytes]) -> str:
        i = self.started.index(p)
        return "".join(f.read_text(errors="replace")
                       for f in (self.home / "logs").glob(f"{i:02d}-*.log"))

    def exit_code(self, p: subprocess.Popen[bytes], timeout: float = 60) -> int:
        """``p``'s exit code once it exits; past a generous ``timeout``, fail with its log (a
        process that does not stop is a finding, and its log is gone with the tmp dir later)."""
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{p.args!r} still running after {timeout} s; its log:\n"
                                 f"{self.logs(p)[-6000:]}") from None

    async def api(self, port: int) -> subprocess.Popen[bytes]:
        p = self.start("api", "--port", str(port))
        await wait_api(port)
        return p

    @staticmethod
    def kill(p: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        os.killpg(p.pid, sig)
        if sig == signal.SIGKILL:
            p.wait()


async def wait_api(port: int, timeout: float = 30) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:

        async def up() -> bool:
            try:
                return (await c.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(up, timeout=timeout, message=f"API on :{port}")


@pytest.fixture
def procs(settings: Settings, tmp_path: Path) -> Iterator[ChaosProcs]:
    p = ChaosProcs(settings, tmp_path)
    yield p
    p.stop_all()
