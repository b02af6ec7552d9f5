"""Per-queue rate limits: at most ``limit`` jobs started per ``window_ms``, across all workers.

The limit is a queue control like pause and the in-flight cap: Postgres (``queues`` row) holds it,
the queue's Redis meta hash mirrors it (versioned, restored by ``reconcile``), and ``claim.lua``
enforces it inside the claim with a sliding-window log of claim times, so any number of workers
share one budget. A limited queue yields no job at all (no attempt is spent on the limiter) and
the claim reports when the next slot frees, so idle workers block until exactly then.

Losing the window log (Redis flushed) forgets at most one window's claims: for that one window up
to twice the limit may start. Everything else is rebuilt by ``reconcile``.
"""

from __future__ import annotations

import logging
from typing import Any

from jobline.shared.core.jobs import translate_errors
from jobline.shared.dispatch.mirror import after_commit
from jobline.shared.dispatch.queue_controls import _controls, check_queue_name
from jobline.shared.dispatch.redis_dispatch import QueueControls
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import ValidationFailed

log = logging.getLogger("jobline.rate_limits")

#: The window log holds up to ``limit`` entries per queue; bounded so one queue's log stays small.
MAX_RATE_LIMIT = 100_000
#: One day: longer windows are quotas, better kept outside a dispatch log.
MAX_WINDOW_MS = 86_400_000

# $2/$3 NULL removes the limit. The version bump orders the Redis mirrors of racing changes.
SET_QUEUE_RATE_LIMIT = """
INSERT INTO queues AS q (name, created_at, rate_limit, rate_window_ms, controls_version)
VALUES ($1, $4, $2, $3, 1)
ON CONFLICT (name) DO UPDATE
   SET rate_limit = $2, rate_window_ms = $3, controls_version = q.controls_version + 1
RETURNING name, paused, max_in_flight, controls_version, rate_limit, rate_window_ms
"""


def check_rate_limit(limit: Any, window_ms: Any) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RATE_LIMIT:
        raise ValidationFailed("limit", f"must be an integer from 1 to {MAX_RATE_LIMIT}")
    if (isinstance(window_ms, bool) or not isinstance(window_ms, int)
            or not 1 <= window_ms <= MAX_WINDOW_MS):
        raise ValidationFailed("windowMs", f"must be an integer from 1 to {MAX_WINDOW_MS}")


@translate_errors
async def _store(deps: Deps, queue: str, limit: int | None,
                 window_ms: int | None) -> QueueControls:
    row = await deps.pool.fetchrow(SET_QUEUE_RATE_LIMIT, queue, limit, window_ms,
                                   to_dt(deps.clock.now_ms()))
    controls = _controls(row)
    deps.known_queues.add(queue)
    # Recorded in Postgres; reconcile re-applies it if this mirror fails.
    with after_commit("queue %s rate limit saved", queue):
        await deps.dispatch.set_queue_meta([controls])
    return controls


async def set_rate_limit(deps: Deps, queue: str, *, limit: int,
                         window_ms: int) -> QueueControls:
    """Allow at most ``limit`` claims from ``queue`` in any ``window_ms`` (all workers together).

    Lowering a limit never interrupts running jobs; it only delays the next claims.
    """
    check_queue_name(queue)
    check_rate_limit(limit, window_ms)
    return await _store(deps, queue, limit, window_ms)


async def clear_rate_limit(deps: Deps, queue: str) -> QueueControls:
    """Remove ``queue``'s rate limit and wake its idle workers. Idempotent."""
    check_queue_name(queue)
    return await _store(deps, queue, None, None)


def parse_config(raw: Any) -> dict[str, tuple[int, int]]:
    """``{"email": {"limit": 10, "windowMs": 1000}}`` -> ``{"email": (10, 1000)}``, validated."""
    if not isinstance(raw, dict):
        raise ValidationFailed("rateLimits", "must be an object of queue name -> "
                               "{limit, windowMs}")
    out: dict[str, tuple[int, int]] = {}
    for queue, v in raw.items():
        check_queue_name(queue, f"rateLimits.{queue}")
        if not isinstance(v, dict) or set(v) != {"limit", "windowMs"}:
            raise ValidationFailed(f"rateLimits.{queue}", "must be {limit, windowMs}")
        try:
            check_rate_limit(v["limit"], v["windowMs"])
        except ValidationFailed as e:
            raise ValidationFailed(f"rateLimits.{queue}.{e.field}", e.message) from None
        out[queue] = (v["limit"], v["windowMs"])
    return out


async def apply_configured(deps: Deps) -> list[QueueControls]:
    """Apply the rate limits from settings (``JOBLINE_RATE_LIMITS``); config wins at start-up,
    later API changes hold until the next start."""
    return [await set_rate_limit(deps, q, limit=lim, window_ms=win)
            for q, (lim, win) in parse_config(deps.settings.rate_limits).items()]
