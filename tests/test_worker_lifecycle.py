"""Issue 19's lifecycle defects, with real processes and real signals.

1. A worker whose PostgreSQL and Valkey went away (vanished from the network, or died) exits on
   SIGTERM within its grace period plus its stop bound, and a second SIGTERM always forces it
   out within the cold bound; a supervisor (``--processes N``) ends with its children.
2. Children of ``jobline run`` die with their parent (parent-death signal), and a restarted
   ``jobline run`` stops the leftovers of its own ``JOBLINE_HOME``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import pytest
from faultproxy import FaultProxy
from test_processes import Procs, counts, sleep_job
from test_run import free_port, ready, start

from jobline.cli import COLD_EXIT_S, WATCHDOG_MARGIN_S
from jobline.shared.core import jobs
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.testing import wait_until
from jobline.worker.pool import COLD_BOUND_S

pytestmark = pytest.mark.slow

GRACE_S = 2.0
LEASE_MS = 1500
#: Each shutdown step's bound (JOBLINE_TEARDOWN_STEP_MS; 5 s by default). Shorter here: behind
#: a blackholed store every step runs to its bound, which took ~20 s per stop at 5 s. What the
#: tests prove (the exit comes within grace + the bound computed from these settings) is the same.
TEARDOWN_STEP_MS = 1000
#: Slack for a loaded 2-core machine on top of a documented bound (process start-up, logging).
SLACK_S = 10.0


def _via(url: str, port: int) -> str:
    u = urlsplit(url)
    netloc = u.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(u._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


class CutStores:
    """PostgreSQL and Valkey behind one proxy each, cut together."""

    def __init__(self, settings: Settings) -> None:
        pg, rd = urlsplit(settings.database_url or ""), urlsplit(settings.redis_url or "")
        self.pg = FaultProxy(pg.hostname or "127.0.0.1", pg.port or 5432)
        self.redis = FaultProxy(rd.hostname or "127.0.0.1", rd.port or 6379)
        self.database_url = _via(settings.database_url or "", self.pg.start())
        self.redis_url = _via(settings.redis_url or "", self.redis.start())

    def cut(self, mode: str) -> None:
        self.pg.set_mode(mode)  # type: ignore[arg-type]
        self.redis.set_mode(mode)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.pg.stop()
        self.redis.stop()


@pytest.fixture
def cut(settings: Settings) -> Iterator[CutStores]:
    c = CutStores(settings)
    yield c
    c.stop()


@pytest.fixture
def procs(settings: Settings, tmp_path: Path) -> Iterator[Procs]:
    p = Procs(settings, tmp_path)
    p.env.update(JOBLINE_LEASE_MS=str(LEASE_MS), JOBLINE_SHUTDOWN_GRACE_S=str(GRACE_S),
                 JOBLINE_TEARDOWN_STEP_MS=str(TEARDOWN_STEP_MS))
    yield p
    p.stop_all()


def _stop_bound_s() -> float:
    """The worker's documented warm-stop bound for these settings (Worker.stop_bound_s)."""
    from jobline.worker.runtime import stop_bound_s

    return stop_bound_s(2 * LEASE_MS / 1000, TEARDOWN_STEP_MS / 1000)


def _wait(p: subprocess.Popen[bytes], timeout: float) -> float:
    t0 = time.monotonic()
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"pid {p.pid} still running {timeout:.0f}s after the signal")
    return time.monotonic() - t0


def _spawn_logged(log: Path, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as f:
        return subprocess.Popen(cmd, env=env, stderr=f, start_new_session=True)


async def _busy_worker_behind(cut: CutStores, procs: Procs, deps: Deps, log: Path,
                              *extra: str, concurrency: int = 2) -> subprocess.Popen[bytes]:
    await jobs.submit_many(deps, [sleep_job(120_000) for _ in range(2)])
    w = _spawn_logged(log, [sys.executable, "-m", "jobline", "worker", "--app", "jobline.demo",
                            "--concurrency", str(concurrency), *extra],
                      {**procs.env, "DATABASE_URL": cut.database_url, "REDIS_URL": cut.redis_url})
    procs.started.append(w)

    async def running() -> bool:
        return (await counts(deps)).get("processing", 0) == 2

    await wait_until(running, timeout=60, message="2 jobs processing")
    return w


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def _count(log: Path, text: str) -> int:
    return log.read_text(errors="replace").count(text)


async def _logged(log: Path, text: str, n: int = 1) -> None:
    """Wait until ``text`` appears ``n`` times in the process log (the signal was handled)."""

    async def seen() -> bool:
        return _count(log, text) >= n

    try:
        await wait_until(seen, timeout=30, message=f"{text!r} x{n} in the log")
    except AssertionError:
        raise AssertionError(_tail(log)) from None


@pytest.mark.parametrize("mode", ["blackhole", "refuse"])
async def test_sigterm_with_the_stores_gone_exits_within_grace_plus_the_bound(
        deps: Deps, procs: Procs, cut: CutStores, mode: str,
        tmp_path: Path) -> None:
    w = await _busy_worker_behind(cut, procs, deps, tmp_path / "w.log")
    cut.cut(mode)
    w.send_signal(signal.SIGTERM)
    _wait(w, GRACE_S + _stop_bound_s() + WATCHDOG_MARGIN_S + SLACK_S)


@pytest.mark.parametrize("mode", ["blackhole", "refuse"])
async def test_a_second_sigterm_with_the_stores_gone_forces_the_exit(
        deps: Deps, procs: Procs, cut: CutStores, mode: str,
        tmp_path: Path) -> None:
    w = await _busy_worker_behind(cut, procs, deps, tmp_path / "w.log")
    cut.cut(mode)
    w.send_signal(signal.SIGTERM)
    await _logged(tmp_path / "w.log", "warm shutdown requested")
    w.send_signal(signal.SIGTERM)  # the same signal again: the second is the cold stop
    _wait(w, COLD_EXIT_S + SLACK_S)


async def test_a_supervisor_with_the_stores_gone_ends_with_its_children(
        deps: Deps, procs: Procs, cut: CutStores, tmp_path: Path) -> None:
    log = tmp_path / "pool.log"
    # one job each: both workers are up (signal handlers installed) once both jobs run
    pool = await _busy_worker_behind(cut, procs, deps, log, "--processes", "2", concurrency=1)
    children = psutil.Process(pool.pid).children(recursive=True)
    assert len(children) == 2
    cut.cut("blackhole")
    pool.send_signal(signal.SIGTERM)
    await _logged(log, "warm shutdown requested", 2)
    pool.send_signal(signal.SIGTERM)
    _wait(pool, COLD_EXIT_S + SLACK_S)
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == [], alive


async def test_a_worker_dies_with_its_supervisor(deps: Deps, procs: Procs) -> None:
    """SIGKILL of the supervisor (nothing forwards a signal) still ends its workers: each
    child gets a parent-death signal, a warm stop."""
    pool = procs.worker("--concurrency", "1", "--processes", "2")

    def kids() -> list[psutil.Process]:
        try:
            return psutil.Process(pool.pid).children()
        except psutil.NoSuchProcess:
            return []

    async def two() -> bool:
        return len(kids()) == 2

    await wait_until(two, timeout=60, message="two worker processes")
    children = kids()
    os.kill(pool.pid, signal.SIGKILL)
    pool.wait()
    try:
        _, alive = psutil.wait_procs(children, timeout=GRACE_S + _stop_bound_s() + SLACK_S)
        assert alive == [], alive
    finally:
        for c in children:
            with contextlib.suppress(psutil.Error):
                c.kill()


def _popen_piped(cmd: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def _run_home() -> Path:
    # Not pytest's tmp dir: PostgreSQL runs as another user and needs to traverse the path.
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    home = Path(tempfile.mkdtemp(prefix="jobline-run-", dir=base))
    home.chmod(0o755)
    return home


async def test_a_supervisor_bounds_its_wait_for_a_child_that_ignores_signals() -> None:
    """The supervisor used to wait on a stuck child forever; now, past the cold bound after
    the second signal, it kills it."""
    stuck = [sys.executable, "-c",
             "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
             "signal.signal(signal.SIGINT, signal.SIG_IGN); print('up', flush=True); "
             "time.sleep(600)"]
    code = ("import logging, sys; logging.basicConfig(level=logging.INFO); "
            f"from jobline.worker.pool import run_pool; sys.exit(run_pool({stuck!r}, 1))")
    pool = _popen_piped([sys.executable, "-c", code])
    try:
        assert pool.stdout is not None
        assert pool.stdout.readline() == b"up\n"
        [child] = psutil.Process(pool.pid).children()
        pool.send_signal(signal.SIGTERM)
        assert pool.stderr is not None
        while b"warm stop requested" not in pool.stderr.readline():
            pass
        pool.send_signal(signal.SIGTERM)
        _wait(pool, COLD_BOUND_S + SLACK_S)
        _, alive = psutil.wait_procs([child], timeout=5)
        assert alive == []
    finally:
        if pool.poll() is None:
            os.killpg(pool.pid, signal.SIGKILL)
            pool.wait()
        for f in (pool.stdout, pool.stderr):
            if f is not None:
                f.close()


def _sleeper(home: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                            start_new_session=True)


def test_a_restarted_run_stops_the_leftovers_its_record_names(tmp_path: Path) -> None:
    from jobline import lifeline

    # An earlier run, already dead, whose children survived it.
    dead_run = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_run.wait()
    left = [_sleeper(tmp_path) for _ in range(2)]
    stranger = _sleeper(tmp_path)  # not in the record: never touched
    try:
        lifeline.run_file(tmp_path).write_text(json.dumps({
            "pid": [dead_run.pid, time.time() - 5], "embedded": False,
            "children": {"api": [left[0].pid, psutil.Process(left[0].pid).create_time()],
                         "workers": [left[1].pid, psutil.Process(left[1].pid).create_time()],
                         # a recycled pid: the stranger's pid with another start time
                         "scheduler": [stranger.pid, 1.0]}}))
        assert lifeline.stop_leftovers(tmp_path, wait_s=10) == ["api", "workers"]
        assert all(p.wait(timeout=10) is not None for p in left)
        assert stranger.poll() is None
        assert not lifeline.run_file(tmp_path).exists()
    finally:
        for p in (*left, stranger):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_a_live_run_is_never_treated_as_leftovers(tmp_path: Path) -> None:
    from jobline import lifeline

    alive = _sleeper(tmp_path)
    try:
        lifeline.run_file(tmp_path).write_text(json.dumps({
            "pid": [alive.pid, psutil.Process(alive.pid).create_time()], "children": {}}))
        with pytest.raises(lifeline.RunActive):
            lifeline.stop_leftovers(tmp_path)
    finally:
        alive.kill()
        alive.wait()


async def test_a_killed_run_takes_its_children_and_embedded_services_with_it() -> None:
    """SIGKILL of `jobline run`: the API, scheduler, relay, worker supervisor and its workers
    get their parent-death signal, and the guardian stops the embedded PostgreSQL and Valkey."""
    home = _run_home()
    port = free_port()
    run = start(home, port)
    try:
        await wait_until(lambda: ready(f"http://127.0.0.1:{port}"), timeout=120,
                         message="API ready")

        async def workers_up() -> list[psutil.Process] | None:
            tree = psutil.Process(run.pid).children(recursive=True)
            names = " ".join(" ".join(p.cmdline()) for p in tree)
            return tree if names.count("jobline worker") >= 2 else None

        tree = await wait_until(workers_up, timeout=60, message="worker pool up")
        assert tree is not None
        from jobline.local import EmbeddedPostgres

        pg_pid = EmbeddedPostgres(home / "postgres").pid
        assert pg_pid is not None
        survivors = [*tree, psutil.Process(pg_pid)]
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        _, alive = psutil.wait_procs(survivors, timeout=60)
        assert alive == [], [(p.pid, p.cmdline()) for p in alive]
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        if run.stdout is not None:
            run.stdout.close()
        from jobline.lifeline import stop_leftovers, stop_services

        stop_leftovers(home, wait_s=10)
        stop_services(home)
        shutil.rmtree(home, ignore_errors=True)
