"""The delivery job: ``jobline.alerts.deliver`` on the internal queue ``jobline.alerts``.

One job per delivery record (one recipient of one channel for one transition), so a channel
that fails is retried with the job's back-off and dead-lettered after its attempts without
holding up the other channels, nor the evaluation (which only inserts the records and submits
the jobs). The delivery record mirrors the job: ``attempts``, ``status`` (queued, retrying,
sent, failed) and the last error, which the alert history shows.

Every scheduler process runs a small worker for this queue (:func:`delivery_worker`); user
workers that serve "every queue" leave ``jobline.*`` queues alone.
"""

from __future__ import annotations

import uuid
from typing import Any

from jobline.analytics.alerting import store
from jobline.analytics.alerting.channels import DeliveryFailed, send
from jobline.analytics.alerting.model import DELIVERY_JOB_TYPE, DELIVERY_QUEUE
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import NotFound, Unrecoverable
from jobline.worker.registry import JobContext, Registry
from jobline.worker.runtime import Worker

#: Concurrent deliveries per scheduler process (each is one network call).
CONCURRENCY = 16

MARK = """
UPDATE alert_deliveries SET status = $2, attempts = greatest(attempts, $3), last_error = $4,
       updated_at = $5, sent_at = CASE WHEN $2 = 'sent' THEN $5 ELSE sent_at END
 WHERE id = $1
"""


async def deliver_one(deps: Deps, delivery_id: uuid.UUID, attempt: int, max_attempts: int
                      ) -> str:
    """Send one delivery; returns its final status for this attempt. Raises
    :class:`DeliveryFailed` for the job to retry (the record says ``retrying``/``failed``)."""
    try:
        d = await store.get_delivery(deps, delivery_id)
    except NotFound:
        return "gone"
    if d["status"] == "sent":
        return "sent"  # a retry of a job whose send landed but whose completion did not
    now = deps.clock.now_ms()
    try:
        channel = await store.get_channel(deps, d["channel_id"])
    except NotFound:
        await deps.pool.execute(MARK, delivery_id, "failed", attempt, "channel deleted",
                                to_dt(now))
        return "failed"
    if not channel.enabled:
        await deps.pool.execute(MARK, delivery_id, "failed", attempt, "channel disabled",
                                to_dt(now))
        return "failed"
    message: dict[str, Any] = (await deps.pool.fetchval(
        "SELECT message FROM alert_deliveries WHERE id = $1", delivery_id))
    try:
        await send(channel, d["recipient"], message, str(delivery_id), now // 1000)
    except DeliveryFailed as e:
        last = attempt >= max_attempts
        await deps.pool.execute(MARK, delivery_id, "failed" if last else "retrying", attempt,
                                str(e), to_dt(deps.clock.now_ms()))
        raise
    await deps.pool.execute(MARK, delivery_id, "sent", attempt, None,
                            to_dt(deps.clock.now_ms()))
    return "sent"


def registry(deps: Deps) -> Registry:
    reg = Registry()

    @reg.job(DELIVERY_JOB_TYPE, queue=DELIVERY_QUEUE, timeout=120)
    async def deliver(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        try:
            delivery_id = uuid.UUID(str(payload.get("deliveryId")))
        except ValueError:
            raise Unrecoverable("payload.deliveryId is not a UUID") from None
        try:
            status = await deliver_one(deps, delivery_id, ctx.attempt, ctx.max_attempts)
        except DeliveryFailed as e:
            # retried by the job's back-off; its message is the job's error
            raise RuntimeError(str(e)) from None
        return {"status": status}

    return reg


def delivery_worker(deps: Deps, worker_id: str) -> Worker:
    """A worker serving only ``jobline.alerts`` with the delivery handler. It lives in the
    scheduler process, so it is listed in the group ``scheduler``: counted in ``default`` it made
    ``jobline run``'s group look one worker over its desired count."""
    return Worker(deps, registry(deps), queues=[DELIVERY_QUEUE], concurrency=CONCURRENCY,
                  worker_id=worker_id, group="scheduler")
