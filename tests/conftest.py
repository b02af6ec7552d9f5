"""Shared fixtures: real PostgreSQL and Valkey, one fresh database and Redis key prefix per test.

Without ``DATABASE_URL`` / ``REDIS_URL`` in the environment the session starts embedded servers
(jobline.local) under pytest's tmp dir. Per-test isolation is a real database cloned from a
migrated template (cheap: a file copy), plus a unique Redis key prefix that is deleted afterwards.

``--pg-bin DIR`` (or ``JOBLINE_TEST_PG_BIN``) runs the session against a throwaway cluster of the
PostgreSQL installed in DIR instead, e.g. Debian's ``/usr/lib/postgresql/15/bin``: the tests start
it under a temporary directory, use it exactly like an external ``DATABASE_URL`` and remove it at
the end. ``make test`` runs the migration + core suite this way (Jobline supports PostgreSQL 14-18).
A DIR without a ``postgres`` binary is a usage error, never a skip.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil
import pytest

from jobline.local import EmbeddedPostgres, EmbeddedValkey
from jobline.local.valkey_cluster import ValkeyCluster
from jobline.shared.platform.clock import SYSTEM_CLOCK, Clock
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect, create_redis
from jobline.shared.platform.redis_client import is_cluster

TEMPLATE_DB = "jobline_template"
COMPACTED_FOREVER = "UPDATE rollup_watermark SET compacted_through = '9000-01-01T00:00:00Z'"
_db_counter = itertools.count(1)
_empty_db_counter = itertools.count(1)
_prefix_counter = itertools.count(1)


@dataclass
class Services:
    database_url: str
    redis_url: str
    #: The embedded PostgreSQL 18 the session started; None for an external server (including
    #: a --pg-bin cluster, which the tests treat as external).
    postgres: EmbeddedPostgres | None
    valkey: EmbeddedValkey | None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pg-bin", default=os.environ.get("JOBLINE_TEST_PG_BIN") or None, metavar="DIR",
        help="run against a throwaway cluster of the PostgreSQL binaries in DIR (e.g. "
             "/usr/lib/postgresql/15/bin) instead of the embedded PostgreSQL 18 or DATABASE_URL; "
             "env JOBLINE_TEST_PG_BIN")  # fmt: skip
    parser.addoption(
        "--redis-cluster", action="store_true",
        default=bool(os.environ.get("JOBLINE_TEST_REDIS_CLUSTER")),
        help="run against a local Valkey Cluster of 3 masters + 3 replicas instead of one "
             "embedded Valkey (dispatch in the slot-group layout); env JOBLINE_TEST_REDIS_CLUSTER")  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    pg_bin = config.getoption("--pg-bin")
    if pg_bin is not None and not (Path(pg_bin) / "postgres").is_file():
        # Loud on purpose: a skipped compatibility run would look like a passing one.
        raise pytest.UsageError(
            f"--pg-bin {pg_bin}: no postgres binary there (Debian: apt-get install postgresql-15)")


class ClusterFromBin(EmbeddedPostgres):
    """A throwaway cluster of the PostgreSQL installed in ``bin_dir``, run like the embedded one
    (same options; as root it runs as the embedded server's system user)."""

    def __init__(self, data_dir: Path, bin_dir: Path) -> None:
        super().__init__(data_dir, fast=True, bin_dir=bin_dir)
        self.pg_bin = bin_dir

    def start(self, timeout: float = 60.0) -> str:
        url = super().start(timeout)
        # If bin_dir were ignored this must fail instead of quietly testing the embedded
        # PostgreSQL 18 a second time.
        expected = _major_version(self.pg_bin)
        actual = int(self.psql("SHOW server_version_num")) // 10000
        if actual != expected:
            raise RuntimeError(f"{self.pg_bin} started PostgreSQL {actual}, expected {expected}")
        return url


def _major_version(bin_dir: Path) -> int:
    # "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    out = subprocess.run([str(bin_dir / "postgres"), "--version"], check=True,
                         capture_output=True, text=True).stdout
    return int(out.split(")", 1)[1].strip().split(".")[0])


def with_database(dsn: str, database: str) -> str:
    """``dsn`` pointing at another database on the same server."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def services(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Services]:
    database_url = os.environ.get("DATABASE_URL") or None
    redis_url = os.environ.get("REDIS_URL") or None
    pg_bin: str | None = pytestconfig.getoption("--pg-bin")
    postgres: EmbeddedPostgres | None = None
    cluster: ClusterFromBin | None = None
    valkey: EmbeddedValkey | None = None
    vcluster: ValkeyCluster | None = None
    base = tmp_path_factory.mktemp("services")
    pg_dir: Path | None = None
    try:
        if pg_bin is not None:
            pg_dir = _postgres_dir(base)
            cluster = ClusterFromBin(pg_dir, Path(pg_bin))
            database_url = cluster.start()
        elif database_url is None:
            pg_dir = _postgres_dir(base)
            postgres = EmbeddedPostgres(pg_dir, fast=True)
            database_url = postgres.start()
        if redis_url is None and pytestconfig.getoption("--redis-cluster"):
            vcluster = ValkeyCluster(base / "valkey-cluster", masters=3, replicas=1)
            redis_url = vcluster.start()
        if redis_url is None:
            # In-memory only: tests simulate Redis data loss with valkey.restart(wipe=True).
            valkey = EmbeddedValkey(base / "valkey", persist=False)
            redis_url = valkey.start()
        yield Services(database_url, redis_url, postgres, valkey)
    finally:
        if vcluster is not None:
            vcluster.stop()
        if valkey is not None:
            valkey.stop()
        if postgres is not None:
            postgres.stop()
        if cluster is not None:
            cluster.stop()
        if pg_dir is not None:
            shutil.rmtree(pg_dir, ignore_errors=True)


@dataclass(frozen=True)
class ExternalCluster:
    """A Redis/Valkey Cluster the session did not start (``REDIS_CLUSTER_URL``): usable through
    its URL, but no fault can be injected (tests that kill or flush nodes skip on it)."""

    url: str


@pytest.fixture(scope="session")
def valkey_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyCluster | ExternalCluster]:
    """A Valkey Cluster of 3 masters + 3 replicas (``jobline.local.valkey_cluster``), started
    on first use (only sessions with a test that asks for it pay its ~7 s start) and stopped at
    the end of the session. ``REDIS_CLUSTER_URL`` (any node of a running cluster) replaces it.

    Shared by the session: tests isolate themselves with their own key prefix, and a test that
    kills a master waits for the failover and restarts the node before it returns, leaving the
    cluster ok (roles may have moved: ask ``cluster.nodes``, never assume a port's role).
    """
    external = os.environ.get("REDIS_CLUSTER_URL") or None
    if external is not None:
        yield ExternalCluster(external)
        return
    cluster = ValkeyCluster(tmp_path_factory.mktemp("valkey-cluster"), masters=3, replicas=1)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


_PG_TMP_PREFIX = "jobline-test-pg-"


def _postgres_dir(base: Path) -> Path:
    """Where the session's throwaway PostgreSQL cluster lives (outside pytest's tmp tree).

    - Speed: CREATE DATABASE per test creates ~300 files. On tmpfs (/dev/shm) a clone takes ~8 ms;
      on this machine class /tmp is ~40x slower at file creation (~360 ms per clone).
    - Root: PostgreSQL then runs as a system user that needs search permission on every ancestor
      of its data dir for its whole life, but pytest resets /tmp/pytest-of-root to 0700 whenever
      another session starts, and the running server PANICs.
    ``JOBLINE_TEST_PG_DIR`` overrides the parent directory.
    """
    parent = Path(os.environ.get("JOBLINE_TEST_PG_DIR") or _fast_tmp_dir())
    for stale in parent.glob(f"{_PG_TMP_PREFIX}*"):
        # Left behind by a killed session (its pid is in the name); never touch a live one.
        owner = stale.name.removeprefix(_PG_TMP_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not psutil.pid_exists(int(owner)):
            with contextlib.suppress(Exception):
                EmbeddedPostgres(stale).stop()
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{_PG_TMP_PREFIX}{os.getpid()}-", dir=parent))


def _fast_tmp_dir() -> str:
    shm = Path("/dev/shm")
    with contextlib.suppress(OSError):
        # 1 GiB leaves room for the cluster (~40 MB) plus many per-test clones (~8 MB each).
        if os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= 1 << 30:
            return str(shm)
    return tempfile.gettempdir()


@pytest.fixture(scope="session")
async def admin_conn(services: Services) -> AsyncIterator[asyncpg.Connection]:
    """One long-lived connection to the maintenance DB for CREATE/DROP DATABASE."""
    conn = await asyncpg.connect(with_database(services.database_url, "postgres"))
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def template_db(services: Services, admin_conn: asyncpg.Connection) -> str:
    """DSN of ``jobline_template``: a freshly migrated database every test DB is cloned from."""
    from jobline.shared.platform.migrate import migrate

    await admin_conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)')
    await admin_conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    dsn = with_database(services.database_url, TEMPLATE_DB)
    await migrate(dsn)
    # The suite's FakeClocks run in 2026-2027 whatever today is, and many tests write hour/day
    # rollup rows by hand (compacted history). A watermark in the far future makes every such
    # row valid and the fold write all three grains at once, as it does for a minute already
    # compacted; tests of the compaction (tests/test_rollups.py, test_monitoring.py) set it.
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(COMPACTED_FOREVER)
    finally:
        await conn.close()
    # is_template lets non-superusers clone it on external servers and marks it as not-for-use.
    await admin_conn.execute(f'ALTER DATABASE "{TEMPLATE_DB}" WITH is_template true')
    return dsn


@pytest.fixture
async def database_url(
    services: Services, template_db: str, admin_conn: asyncpg.Connection
) -> AsyncIterator[str]:
    # The pid keeps names distinct when several pytest processes share one external server.
    name = f"t_{os.getpid()}_{next(_db_counter)}"
    t0 = time.perf_counter()
    # FILE_COPY copies files and forces a checkpoint: a bit faster than the default WAL_LOG on our
    # fsync=off server, but a checkpoint per test would hurt a real (external) server.
    # PostgreSQL 14 has no STRATEGY clause (it always copies files).
    strategy = "FILE_COPY" if services.postgres is not None else "WAL_LOG"
    clause = f" STRATEGY {strategy}" if await _server_version(admin_conn) >= 150000 else ""
    await admin_conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"{clause}')
    clone_timings.append(time.perf_counter() - t0)
    try:
        yield with_database(services.database_url, name)
    finally:
        # FORCE: a test that leaked a pool must not break the next test's setup.
        await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _server_version(conn: asyncpg.Connection) -> int:
    """``server_version_num`` of the server behind ``conn``, e.g. 150018."""
    return int(await conn.fetchval("SHOW server_version_num"))


@pytest.fixture
async def empty_database(services: Services, admin_conn: asyncpg.Connection) -> AsyncIterator[str]:
    """DSN of a new database with no migration applied (tests of the migration runner)."""
    name = f"m_{os.getpid()}_{next(_empty_db_counter)}"
    await admin_conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(services.database_url, name)
    finally:
        await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


#: Seconds per CREATE DATABASE ... TEMPLATE; printed in the terminal summary.
clone_timings: list[float] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if clone_timings:
        ms = sorted(t * 1000 for t in clone_timings)
        terminalreporter.write_line(
            f"per-test database clone: {len(ms)} clones, median {ms[len(ms) // 2]:.1f} ms, "
            f"max {ms[-1]:.1f} ms"
        )


@pytest.fixture
def redis_url(services: Services) -> str:
    return services.redis_url


@pytest.fixture
async def redis_prefix(services: Services) -> AsyncIterator[str]:
    prefix = f"t{os.getpid()}x{next(_prefix_counter)}"
    yield prefix
    client = create_redis(services.redis_url)

    async def unlink(keys: list[bytes]) -> None:
        if not is_cluster(client):
            await client.unlink(*keys)
            return
        async with client.pipeline(transaction=False) as p:  # one slot per command
            for key in keys:
                # not p.unlink(): the cluster client's multi-key unlink is a coroutine that
                # splits by slot itself, not a pipelined command
                p.execute_command("UNLINK", key)
            await p.execute()

    try:
        # Keys may be hash-tagged ("{prefix}:...") for cluster slots, or co-located with an
        # untagged key ("{prefix:events}:alive"), so match both spellings.
        # A cluster client's SCAN walks every primary.
        for pattern in (f"{prefix}*", f"{{{prefix}*"):
            batch: list[bytes] = []
            async for key in client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    await unlink(batch)
                    batch.clear()
            if batch:
                await unlink(batch)
    finally:
        await client.aclose()


@pytest.fixture
def settings(database_url: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> Settings:
    return Settings().with_(
        database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix, home=tmp_path
    )


@pytest.fixture
def clock() -> Clock:
    """The clock ``deps`` reads. A module that moves time overrides this fixture with a
    ``FakeClock`` (its tests then take ``clock`` to advance it)."""
    return SYSTEM_CLOCK


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    """The settings ``deps`` connects with. A module that needs other limits (lease, back-off...)
    overrides this fixture, e.g. ``return settings.with_(lease_ms=10_000)``."""
    return settings


@pytest.fixture
async def deps(deps_settings: Settings, clock: Clock) -> AsyncIterator[Deps]:
    """Connections to the test's own database and Redis prefix, closed after the test."""
    d = await connect(deps_settings, clock)
    try:
        yield d
    finally:
        await d.close()


@pytest.fixture
async def http(deps: Any) -> AsyncIterator[Any]:
    """The REST app over the requesting module's ``deps`` fixture."""
    from jobline.api.app import create_app
    from jobline.testing import serve_app

    async for client in serve_app(create_app(deps.settings, deps=deps)):
        yield client


@pytest.fixture
async def app(deps: Any) -> Any:
    """The whole API app (REST, GraphQL, dashboard) over the requesting module's ``deps``."""
    from jobline.api.app import create_app

    return create_app(deps.settings, deps=deps)


@pytest.fixture
async def admin(app: Any) -> AsyncIterator[Any]:
    """An HTTP client of ``app`` holding an admin key."""
    from jobline.testing import serve_app

    async for client in serve_app(app, role="admin"):
        yield client
