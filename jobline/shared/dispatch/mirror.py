"""Mirroring a committed Postgres change into Redis: the one place that decides what a failed
mirror means.

Invariant: once Postgres has committed, the operation has happened. Redis only mirrors it, and
``reconcile`` (plus the lease sweep) rebuilds Redis from Postgres, so *any* Redis failure after
the commit — a lost connection, a timeout, or a ``ResponseError`` such as an OOM refusal under
the required ``noeviction`` policy, ``READONLY`` after a failover, ``MISCONF`` — is logged and
swallowed, never reported as a failure of the operation (an API 500 after a commit would invite
a retry of something that already happened; a worker would drop the rest of its batch).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from jobline.shared.platform.redis_client import REDIS_ERRORS

log = logging.getLogger("jobline.dispatch")


@contextmanager
def after_commit(what: str, *args: object) -> Iterator[None]:
    """Run the Redis mirror of an already committed change; any Redis error inside (a
    :class:`redis.exceptions.RedisError`, or a Cluster client's ``RedisClusterException`` such as
    a slot no node serves) is logged (``what % args``, then the error) and suppressed. Anything else propagates.

    Use only after the commit: before it, a Redis failure must fail the operation.
    """
    try:
        yield
    except REDIS_ERRORS as e:
        log.warning("%s; Redis mirror failed (%s: %s), reconcile will repair it",
                    what % args if args else what, type(e).__name__, e)
