"""Queue controls: pause/resume and the global in-flight cap, one core function each.

Postgres (``queues`` row) is the truth; the queue's Redis meta hash mirrors it so ``claim.lua``
enforces it inside the claim, atomically for every worker. A pause therefore stops new claims
only: running jobs keep their leases and finish normally. Resuming (or raising the cap) wakes
idle workers through the queue's wake list, so nothing waits for a poll.
"""

from __future__ import annotations

import logging
from typing import Any

from jobline.shared.core import sql
from jobline.shared.core.jobs import translate_errors
from jobline.shared.dispatch.mirror import after_commit
from jobline.shared.dispatch.redis_dispatch import QUEUE_NAME, QueueControls
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import ValidationFailed

log = logging.getLogger("jobline.queues")

#: Upper bound of a cap; a larger one is almost certainly a typo and would mean "unlimited".
MAX_IN_FLIGHT_LIMIT = 1_000_000

_KEEP: Any = object()


def _controls(row: Any) -> QueueControls:
    return QueueControls(row["name"], row["paused"], row["max_in_flight"],
                         row["controls_version"], row["rate_limit"], row["rate_window_ms"])


def check_queue_name(name: str, field: str = "name") -> None:
    if not isinstance(name, str) or not QUEUE_NAME.match(name) or name.endswith("\n"):
        raise ValidationFailed(field, "must be 1-64 characters of A-Z a-z 0-9 . _ : - "
                               "starting with a letter or digit")


@translate_errors
async def _set_controls(deps: Deps, queue: str, *, paused: bool | None = None,
                        max_in_flight: Any = _KEEP) -> QueueControls:
    check_queue_name(queue)
    set_cap = max_in_flight is not _KEEP
    if set_cap and max_in_flight is not None and (
            isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int)
            or not 0 <= max_in_flight <= MAX_IN_FLIGHT_LIMIT):
        raise ValidationFailed("maxInFlight",
                               f"must be an integer from 0 to {MAX_IN_FLIGHT_LIMIT}, or null")
    row = await deps.pool.fetchrow(
        sql.SET_QUEUE_CONTROLS, queue, paused, set_cap,
        max_in_flight if set_cap else None, to_dt(deps.clock.now_ms()))
    controls = _controls(row)
    deps.known_queues.add(queue)
    # Recorded in Postgres; reconcile re-applies it if this mirror fails.
    with after_commit("queue %s controls saved", queue):
        await deps.dispatch.set_queue_meta([controls])
    return controls


async def pause_queue(deps: Deps, queue: str) -> QueueControls:
    """Stop claims from ``queue`` (jobs already running are not touched). Idempotent."""
    return await _set_controls(deps, queue, paused=True)


async def resume_queue(deps: Deps, queue: str) -> QueueControls:
    """Allow claims from ``queue`` again and wake its idle workers. Idempotent."""
    return await _set_controls(deps, queue, paused=False)


async def set_queue_limits(deps: Deps, queue: str, *, max_in_flight: int | None) -> QueueControls:
    """Cap the jobs of ``queue`` leased at once across all workers (None removes the cap).

    Lowering the cap below the current in-flight count stops new claims until enough finish;
    running jobs are never interrupted.
    """
    return await _set_controls(deps, queue, max_in_flight=max_in_flight)


@translate_errors
async def queue_controls(deps: Deps) -> dict[str, QueueControls]:
    return {r["name"]: _controls(r) for r in await deps.pool.fetch(sql.QUEUE_CONTROLS)}
