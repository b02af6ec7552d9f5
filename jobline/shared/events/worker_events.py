"""Events that no job row produces: worker lifecycle and queue backlog.

The worker runtime reports its own start and stop; a worker that dies without stopping is
noticed by the scheduler's sweep (:func:`sweep_lost_workers`) when its heartbeat key expires.
Each goes into the outbox through :func:`jobline.shared.events.outbox.emit`, so the relay publishes it
like any job event.
"""

from __future__ import annotations

from typing import Any

from jobline.shared.events.outbox import NewEvent, emit
from jobline.shared.observe import workers
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.redis_client import get_many


def _tracked(deps: Deps) -> str:
    #: Workers whose end has not been reported yet (separate from the live set the API prunes).
    return workers.tracked_key(deps.dispatch.prefix)


async def worker_started(deps: Deps, worker_id: str, info: dict[str, Any]) -> None:
    await emit(deps, [NewEvent("workers.started", data={"workerId": worker_id, **info})])
    await deps.redis.sadd(_tracked(deps), worker_id)


async def worker_stopped(deps: Deps, worker_id: str, info: dict[str, Any]) -> None:
    # SREM first: whoever removes the id reports the end, so a sweep racing a clean stop does
    # not also report it lost.
    if await deps.redis.srem(_tracked(deps), worker_id):
        await emit(deps, [NewEvent("workers.stopped", data={"workerId": worker_id, **info})])


async def sweep_lost_workers(deps: Deps) -> list[str]:
    """Report ``workers.heartbeat_lost`` for tracked workers whose heartbeat key expired."""
    d = deps.dispatch
    ids = [m.decode() if isinstance(m, bytes) else str(m)
           for m in await deps.redis.smembers(_tracked(deps))]
    if not ids:
        return []
    beats = await get_many(deps.redis, [workers.worker_key(d.prefix, i) for i in ids])
    lost = []
    for worker_id, beat in zip(ids, beats, strict=True):
        if beat is None and await deps.redis.srem(_tracked(deps), worker_id):
            lost.append(worker_id)
    await emit(deps, [NewEvent("workers.heartbeat_lost", data={"workerId": w}) for w in lost])
    return lost


async def emit_backlog(deps: Deps) -> int:
    """One ``queues.backlog`` per queue with jobs waiting (ready or delayed) in Redis."""
    queues = await deps.dispatch.known_queues()
    depth = await deps.dispatch.depth(sorted(queues))
    events = [NewEvent("queues.backlog", queue=q,
                       data={"ready": d.get("ready", 0), "delayed": d.get("delayed", 0),
                             "leased": d.get("leased", 0)})
              for q, d in sorted(depth.items()) if d.get("ready", 0) or d.get("delayed", 0)]
    await emit(deps, events)
    return len(events)
