"""The worker registry in Redis: which workers are alive, for the dashboard and the lost-worker
sweep. Every key of it is spelled here, and only here.

- ``{prefix}:worker:{id}``: the worker's info (JSON), with a TTL its heartbeats renew, so a dead
  worker's key expires by itself;
- ``{prefix}:workers``: the set of ids registered (pruned of expired ones when listed);
- ``{prefix}:workers:tracked``: ids whose end has not been reported as an event yet
  (``jobline.shared.events.worker_events``), separate from the live set that listing prunes.

Best-effort bookkeeping: no job state lives here (leases are in the dispatch keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from jobline.shared.core.jobs import translate_errors
from jobline.shared.platform.connections import Deps


def worker_key(prefix: str, worker_id: str) -> str:
    return f"{prefix}:worker:{worker_id}"


def live_set_key(prefix: str) -> str:
    return f"{prefix}:workers"


def tracked_key(prefix: str) -> str:
    return f"{prefix}:workers:tracked"


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
    vals = await d.r.mget([worker_key(d.prefix, i) for i in ids])
    out, dead = [], []
    for i, v in zip(ids, vals, strict=True):
        if v is None:
            dead.append(i)
        else:
            out.append(orjson.loads(v))
    if dead:
        await d.r.srem(live_set_key(d.prefix), *dead)
    return sorted(out, key=lambda w: w["id"])
