"""Backpressure: refuse new submissions to a queue whose backlog is over a configured cap.

``JOBLINE_MAX_QUEUE_DEPTH`` (0 = off) caps the jobs one queue holds pending + scheduled;
``JOBLINE_QUEUE_DEPTHS`` (JSON, ``{"email": 100000}``) sets a queue's own cap (0 = none). The
core submit operations call :func:`admit` before anything is stored (``jobs.submit_many``, hence
``batches.create_batch``, and ``GroupCommitter.submit`` once per caller), so every shell gives
the same answer; over the cap the submission fails with
:class:`~jobline.shared.platform.errors.Unavailable` (REST 503 + Retry-After, GraphQL
``UNAVAILABLE``) and stores nothing.

How the depth is measured, and the trade-offs:
  * ``ZCARD`` of the queue's ready and delayed sets in Redis, pipelined: O(1), one round trip for
    all queues of a request (on a Redis Cluster one per node holding those queues), no Postgres
    query on the hot path. Jobs ``waiting`` on dependencies
    are not in Redis and do not count (they cannot run before their parents anyway).
  * The check and the insert are not one atomic step: concurrent submitters may overshoot the cap
    by at most their in-flight batch sizes. The cap is a pressure valve, not an exact quota.
  * When Redis is unreachable (on a Cluster also: a shard without a master mid-failover) the
    check is skipped (fails open): Postgres is the truth and a
    submit it commits is acknowledged; refusing all work because the *measurement* failed would
    turn a Redis blip into an outage. The cap is back as soon as Redis answers.
  * Redis lags Postgres after a flush until ``reconcile`` runs; during that window the measured
    depth is low, so the cap errs towards accepting.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import Unavailable
from jobline.shared.platform.redis_client import UNAVAILABLE_ERRORS

log = logging.getLogger("jobline.backpressure")

#: What a refused client is told to wait: long enough for workers to make a dent.
RETRY_AFTER_S = 5


def cap_of(deps: Deps, queue: str) -> int:
    """The backlog cap of ``queue``: its own entry in ``queue_depths``, else the global one."""
    own = deps.settings.queue_depths.get(queue)
    if isinstance(own, int) and not isinstance(own, bool) and own >= 0:
        return own
    return deps.settings.max_queue_depth


async def queue_depths(deps: Deps, queues: Iterable[str]) -> dict[str, int]:
    """Pending + scheduled jobs of each queue as Redis sees them."""
    names = sorted(set(queues))
    pipe = deps.redis.pipeline(transaction=False)
    for q in names:
        k = deps.dispatch.keys(q)
        pipe.zcard(k.ready)
        pipe.zcard(k.delayed)
    counts = await pipe.execute()
    return {q: int(counts[2 * i]) + int(counts[2 * i + 1]) for i, q in enumerate(names)}


async def admit(deps: Deps, queues: Iterable[str]) -> None:
    """Raise :class:`Unavailable` if adding these jobs (one queue name per job) would push a
    queue over ``max_queue_depth``."""
    if not deps.settings.max_queue_depth and not deps.settings.queue_depths:
        return  # no cap configured (the default): nothing to measure on the submit path
    adding = Counter(queues)
    caps = {q: cap_of(deps, q) for q in adding}
    adding = Counter({q: n for q, n in adding.items() if caps[q] > 0})
    if not adding:
        return
    try:
        depths = await queue_depths(deps, adding)
    except UNAVAILABLE_ERRORS as e:
        log.warning("queue depth unknown (%s); admitting without the cap", type(e).__name__)
        return
    for q in sorted(adding):
        if depths[q] + adding[q] > caps[q]:
            raise Unavailable(
                f"queue {q!r} is over its backlog cap ({depths[q]} queued, cap {caps[q]}); "
                "retry later", retry_after_s=RETRY_AFTER_S)
