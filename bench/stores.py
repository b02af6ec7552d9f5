"""The stores a benchmark script runs against: embedded PostgreSQL + Valkey in a fresh directory,
or the external ones ``DATABASE_URL``/``REDIS_URL`` name."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from jobline.local import LocalServices
from jobline.shared.platform.migrate import migrate


@asynccontextmanager
async def local(prefix: str, *, external: bool = True, migrated: bool = True,
                base_dir: str | None = None) -> AsyncIterator[LocalServices]:
    """Started (and, with ``migrated``, migrated) services; stopped and their data removed on
    exit. ``base_dir`` puts the data elsewhere (a store larger than RAM: on disk). ``external=False`` ignores ``DATABASE_URL``/``REDIS_URL`` (scripts that read the
    embedded servers' own CPU time need them to be local).

    The data goes to ``/dev/shm``: file creation in ``/tmp`` is slow on these machines, and
    PostgreSQL (running as its own user) must be able to traverse the path. It is removed on
    exit because ``/dev/shm`` is RAM: databases left by earlier runs once filled it and killed
    PostgreSQL in the middle of a run.
    """
    base = base_dir or ("/dev/shm" if Path("/dev/shm").is_dir() else None)
    home = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    home.chmod(0o755)
    env = os.environ if external else {}
    services = LocalServices(home, database_url=env.get("DATABASE_URL"),
                             redis_url=env.get("REDIS_URL")).start()
    try:
        if migrated:
            await migrate(services.database_url)
        yield services
    finally:
        services.stop()
        shutil.rmtree(home, ignore_errors=True)
