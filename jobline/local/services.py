"""The PostgreSQL + Redis pair a local process uses: the URLs it was given, or embedded servers
for the missing ones (``jobline run``, benchmarks)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from jobline.local.postgres import EmbeddedPostgres
from jobline.local.process import EmbeddedServiceError
from jobline.local.valkey import EmbeddedValkey


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


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

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def local_services(
    home: Path, *, database_url: str | None, redis_url: str | None, fast: bool = False
) -> LocalServices:
    """Start embedded PostgreSQL (``home/postgres``) and/or Valkey (``home/valkey``) for missing URLs."""
    return LocalServices(home, database_url=database_url, redis_url=redis_url, fast=fast).start()
