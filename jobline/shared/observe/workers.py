"""The worker registry in Redis: which workers are alive, for the dashboard and the lost-worker
sweep. Every key of it is spelled here, and only here.

- ``{prefix}:worker:{id}``: the worker's info (JSON), with a TTL its heartbeats renew, so a dead
  worker's key expires by itself;
- ``{prefix}:workers``: the set of ids registered (pruned of expired ones when listed);
- ``{prefix}:workers:tracked``: ids whose end has not been reported as an event yet
  (``jobline.shared.events.worker_events``), separate from the live set that listing prunes;
- ``{prefix}:workers:commands``, ``{prefix}:worker:{id}:logs``, ``{prefix}:worker:{id}:stopped``
  and ``{prefix}:workers:seen``: worker management (``jobline.shared.fleet.control``).

Best-effort bookkeeping: no job state lives here (leases are in the dispatch keys).

Redis Cluster: these keys carry no hash tag, so they spread over the slots; no command here
touches two of them at once except through a non-transactional pipeline or
:func:`~jobline.shared.platform.redis_client.get_many` (one MGET per slot). A shard lost with
some of them heals at the next heartbeat (``register_worker`` writes both the key and the set).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any

import orjson

from jobline.shared.core.jobs import translate_errors
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.redis_client import get_many

try:  # an optional dependency ([local] extra): the runtime must not need it
    import psutil as _psutil
except ImportError:  # pragma: no cover - installed in development and tests
    _psutil = None  # type: ignore[assignment]


class ProcessUsage:
    """This process's CPU use since the previous sample and its resident memory: psutil when it
    is installed, else the standard library (psutil is not a runtime dependency): ``os.times`` for CPU time,
    ``/proc/self/statm`` for the current RSS (Linux), else the peak RSS from ``getrusage``.

    Invariant: ``cpuPercent`` is process CPU time over wall time between two samples, so 100 is
    one core busy (a multi-threaded process can exceed 100); None on the first sample.
    """

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None
        self._proc: Any = None

    def sample(self) -> dict[str, Any]:
        if _psutil is not None:
            # psutil where installed (the [local] extra): the same two figures, portable;
            # cpu_percent(None) is the CPU share since this Process object's previous call
            if self._proc is None or self._proc.pid != os.getpid():  # new, or after a fork
                self._proc = _psutil.Process()
                self._proc.cpu_percent(None)
                return {"cpuPercent": None, "rssBytes": int(self._proc.memory_info().rss)}
            return {"cpuPercent": round(self._proc.cpu_percent(None), 1),
                    "rssBytes": int(self._proc.memory_info().rss)}
        t = os.times()
        cpu, wall = t.user + t.system, time.monotonic()
        pct = None
        if self._last is not None and wall > self._last[1]:
            pct = round(100 * (cpu - self._last[0]) / (wall - self._last[1]), 1)
        self._last = (cpu, wall)
        return {"cpuPercent": pct, "rssBytes": rss_bytes()}


def rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # macOS: bytes, else KiB


#: One per process: CPU% is the process's, whichever worker in it heartbeats.
process_usage = ProcessUsage()


def worker_key(prefix: str, worker_id: str) -> str:
    return f"{prefix}:worker:{worker_id}"


def live_set_key(prefix: str) -> str:
    return f"{prefix}:workers"


def tracked_key(prefix: str) -> str:
    return f"{prefix}:workers:tracked"


# Worker management (jobline.shared.fleet.control says what each holds).
def commands_key(prefix: str) -> str:
    return f"{prefix}:workers:commands"


def logs_key(prefix: str, worker_id: str) -> str:
    return f"{prefix}:worker:{worker_id}:logs"


def stopped_key(prefix: str, worker_id: str) -> str:
    return f"{prefix}:worker:{worker_id}:stopped"


def seen_key(prefix: str) -> str:
    return f"{prefix}:workers:seen"


@translate_errors
async def register_worker(deps: Deps, info: Mapping[str, Any], ttl_ms: int) -> None:
    """Record a live worker for the dashboard; the key expires unless the next heartbeat renews
    it, so a dead worker disappears by itself."""
    d = deps.dispatch
    async with d.r.pipeline(transaction=False) as p:
        p.set(worker_key(d.prefix, str(info["id"])), orjson.dumps(dict(info)), px=ttl_ms)
        p.sadd(live_set_key(d.prefix), str(info["id"]))
        await p.execute()


@translate_errors
async def deregister_worker(deps: Deps, worker_id: str) -> None:
    d = deps.dispatch
    async with d.r.pipeline(transaction=False) as p:
        p.delete(worker_key(d.prefix, worker_id))
        p.srem(live_set_key(d.prefix), worker_id)
        await p.execute()


async def list_workers(deps: Deps) -> list[dict[str, Any]]:
    """Live workers (those whose heartbeat key has not expired)."""
    d = deps.dispatch
    ids = [m.decode() if isinstance(m, bytes) else m
           for m in await d.r.smembers(live_set_key(d.prefix))]
    if not ids:
        return []
    # one MGET per slot on a Cluster: each worker's key hashes to its own slot
    vals = await get_many(d.r, [worker_key(d.prefix, i) for i in ids])
    out, dead = [], []
    for i, v in zip(ids, vals, strict=True):
        if v is None:
            dead.append(i)
        else:
            out.append(orjson.loads(v))
    if dead:
        await d.r.srem(live_set_key(d.prefix), *dead)
    return sorted(out, key=lambda w: w["id"])
