"""The edges out of ``waiting``: what a job's end does to the jobs waiting on it.

A job waits for its dependencies (``jobline.shared.flow.dependencies`` decides that at submit)
or, as a batch's onComplete job, for its batch (``jobline.shared.flow.batches``). It leaves
``waiting`` only here, in the transaction of the transition that ended another job:

- ``RELEASE_DEPENDENTS``: its last dependency completed -> ``pending``/``scheduled``;
- ``CANCEL_DEPENDENTS``: a dependency ended ``dead_letter``/``failed``/``cancelled`` ->
  ``cancelled`` (level by level, so transitively);
- ``RELEASE_ON_COMPLETE``: every job of its batch is terminal -> ``pending``/``scheduled``.

Why there is no race between a dependency completing and a dependent being submitted, and why
the cascade runs one statement per level, is argued in ``docs/dependencies.md``; the batch
exactly-once argument is in ``docs/batches.md``. Everything here takes the caller's connection
(already in a transaction) and never touches Redis: callers mirror :class:`Settled` after commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobline.shared.core import edges, sql


@dataclass(slots=True)
class Settled:
    """What :func:`settle` changed besides the caller's own jobs."""

    #: Jobs that became pending/scheduled (dependents released, onComplete jobs): to dispatch.
    released: list[Any] = field(default_factory=list)
    #: Waiting jobs cancelled because a dependency failed (never in Redis: nothing to remove).
    cancelled: list[Any] = field(default_factory=list)


@edges.performs(edges.RELEASE_DEPENDENTS, edges.CANCEL_DEPENDENTS, edges.RELEASE_ON_COMPLETE)
async def settle(conn: Any, now: datetime, *, completed: Sequence[uuid.UUID] = (),
                 doomed: Sequence[tuple[uuid.UUID, str]] = (),
                 batch_ids: Sequence[uuid.UUID | None] = ()) -> Settled:
    """Apply the consequences of jobs having just ended, in the caller's transaction.

    ``completed``: ids now ``completed``; ``doomed``: ``(id, status)`` now dead_letter, failed or
    cancelled; ``batch_ids``: the batch of every job that just became terminal (None allowed).
    Must run after the statement that made those jobs terminal, as separate statements (a new
    snapshot each), never folded into it.
    """
    out = Settled()
    if completed:
        out.released += await conn.fetch(sql.RELEASE_DEPENDENTS, list(completed), now)
    level = list(doomed)
    while level:
        rows = await conn.fetch(sql.CANCEL_DEPENDENTS, [d[0] for d in level],
                                [d[1] for d in level], now)
        out.cancelled += rows
        level = [(r["id"], "cancelled") for r in rows]
    bids = [b for b in batch_ids if b is not None]
    bids += [r["batch_id"] for r in out.cancelled if r["batch_id"] is not None]
    if bids:
        due = [r["id"] for r in await conn.fetch(sql.BUMP_BATCHES, bids) if r["due"]]
        if due:
            out.released += await conn.fetch(sql.RELEASE_ON_COMPLETE, due, now)
    return out
