"""The same no-op job for every Python peer, run in bench/.peers/venv (not Jobline's venv).

Each handler does the peers' shared bookkeeping only: INCR a counter (the driver times the drain
from the first to the last increment) or, for a latency job, RPUSH its own start time minus the
submit time. Env: PEER_REDIS_URL (a database of the suite's Valkey that only the peers use).
"""

from __future__ import annotations

import os
import time

import redis

URL = os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:6379/1")
_r = redis.Redis.from_url(URL)


def record(t: float | None) -> None:
    if t is None:
        _r.incr("pb:done")
    else:
        _r.rpush("pb:lat", time.time() - t)


_ar = None


async def arecord(t: float | None) -> None:
    global _ar
    if _ar is None:
        import redis.asyncio as aredis
        _ar = aredis.Redis.from_url(URL)
    if t is None:
        await _ar.incr("pb:done")
    else:
        await _ar.rpush("pb:lat", time.time() - t)


# --- celery ---
def _celery():  # type: ignore[no-untyped-def]
    from celery import Celery
    app = Celery("peer", broker=URL)
    # documented throughput settings: no results, no per-task events, big prefetch
    app.conf.update(task_ignore_result=True, worker_prefetch_multiplier=64,
                    worker_send_task_events=False, task_acks_late=False,
                    broker_connection_retry_on_startup=True)
    return app


if os.environ.get("PEER") == "celery":
    celery_app = _celery()

    @celery_app.task(name="noop")
    def celery_noop(t: float | None = None) -> None:
        record(t)

# --- dramatiq ---
if os.environ.get("PEER") == "dramatiq":
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker
    dramatiq.set_broker(RedisBroker(url=URL))

    @dramatiq.actor(max_retries=0)
    def dramatiq_noop(t: float | None = None) -> None:
        record(t)

# --- huey ---
if os.environ.get("PEER") == "huey":
    from huey import RedisHuey
    huey = RedisHuey("peer", url=URL, results=False)

    @huey.task()
    def huey_noop(t: float | None = None) -> None:
        record(t)

# --- rq ---
def rq_noop(t: float | None = None) -> None:
    record(t)


# --- arq ---
async def arq_noop(ctx: dict, t: float | None = None) -> None:  # type: ignore[type-arg]
    await arecord(t)


if os.environ.get("PEER") == "arq":
    from arq.connections import RedisSettings

    class ArqSettings:
        functions = [arq_noop]
        redis_settings = RedisSettings.from_dsn(URL)
        max_jobs = 25
        poll_delay = 0.01
        keep_result = 0
        handle_signals = True

# --- saq ---
async def saq_noop(ctx: dict, *, t: float | None = None) -> None:  # type: ignore[type-arg]
    await arecord(t)


if os.environ.get("PEER") == "saq":
    from saq import Queue as SaqQueue
    saq_queue = SaqQueue.from_url(URL)
    saq_settings = {"queue": saq_queue, "functions": [saq_noop], "concurrency": 25}

# --- taskiq ---
if os.environ.get("PEER") == "taskiq":
    from taskiq_redis import ListQueueBroker
    taskiq_broker = ListQueueBroker(URL)

    @taskiq_broker.task(task_name="noop")
    async def taskiq_noop(t: float | None = None) -> None:
        await arecord(t)
