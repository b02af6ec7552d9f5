"""Delivering a cancel request to the worker that runs the job.

The request itself is Postgres state (``jobs.cancel_requested_at``, written by ``cancel``); this
module only carries the news to the one worker that holds the lease, fast:

* **Push** (the fast path, ~1 ms): ``cancel`` publishes the job id on the Redis pub/sub channel of
  the lease holder, ``{prefix}:cancel:{worker_id}``. Each worker subscribes to its own channel
  only, so a cancel costs one PUBLISH and wakes one process, however many workers there are.
* **Pull** (the fallback, within one heartbeat): every heartbeat's lease extension also returns
  which of the worker's jobs have a cancel request (``EXTEND_LEASES``). This covers a message lost
  to a Redis restart or a dropped subscription, at no extra query.

Why not a per-queue cancel set checked on heartbeat: it needs either a heartbeat every ~1 s (a
Postgres/Redis write per worker per second, for an event that is rare) or polling; and it is
Redis state that ``reconcile`` would have to rebuild. Pub/sub holds no state, so a Redis flush
loses at most in-flight messages, which the heartbeat pull recovers.
"""

from __future__ import annotations

import logging
import uuid

from jobline.shared.dispatch.mirror import after_commit
from jobline.shared.platform.connections import Deps

log = logging.getLogger("jobline.cancellation")


def channel(prefix: str, worker_id: str) -> str:
    """The pub/sub channel a worker listens on for cancel signals."""
    return f"{prefix}:cancel:{worker_id}"


async def signal(deps: Deps, worker_id: str | None, job_id: uuid.UUID) -> None:
    """Tell ``worker_id`` that ``job_id`` should stop. Best effort: the request is already
    committed in Postgres, and the worker's next heartbeat reads it if this message is lost."""
    if worker_id is None:
        return
    # if the publish fails, the worker learns of the request on its next heartbeat
    with after_commit("cancel of job %s recorded, worker %s not signalled", job_id, worker_id):
        await deps.dispatch.r.publish(channel(deps.dispatch.prefix, worker_id), str(job_id))
