"""Job counts per (queue, status), read without scanning ``jobs``.

Migration 0015 keeps them: statement-level triggers on ``jobs`` append each statement's net
change per (queue, status) to ``queue_count_deltas``; :func:`fold` moves those rows into
``queue_counts``. :func:`queue_counts` sums both in one statement, so it is exact at its snapshot
(it equals ``SELECT queue_name, status, count(*) FROM jobs GROUP BY 1, 2`` at the same instant),
and its cost grows with the number of queues and of unfolded delta rows, never with the number
of jobs stored.

Invariant the triggers rely on: rows enter and leave ``jobs`` through the partitioned parent
(INSERT/UPDATE/DELETE/COPY/TRUNCATE on ``jobs``), or leave with a whole partition through
``jobline_drop_jobs_partition``. A write addressed to one partition directly fires no trigger of
the parent and would go uncounted.
"""

from __future__ import annotations

from jobline.shared.core import sql
from jobline.shared.platform.connections import Deps

#: How often the scheduler folds (the unfolded rows a read sums are those of about this long).
FOLD_EVERY_S = 1.0
#: A read that summed more unfolded delta rows than this folds them itself, so reads stay cheap
#: when no scheduler runs (an embedded test, a CLI-only deployment) or it falls behind.
FOLD_ON_READ_ROWS = 20_000


async def fold(deps: Deps) -> int:
    """Fold the unfolded deltas into ``queue_counts``; returns the delta rows folded, or -1 when
    another fold was running (nothing is lost: the rows wait for the next fold)."""
    n: int = await deps.pool.fetchval(sql.FOLD_QUEUE_COUNTS)
    return n


async def queue_counts(deps: Deps) -> dict[str, dict[str, int]]:
    """``{queue: {status: n}}`` for every non-zero count."""
    out: dict[str, dict[str, int]] = {}
    unfolded = 0
    for r in await deps.pool.fetch(sql.QUEUE_COUNTS):
        unfolded += r["unfolded"]
        if r["n"]:
            out.setdefault(r["queue_name"], {})[r["status"]] = r["n"]
    if unfolded > FOLD_ON_READ_ROWS:
        await fold(deps)
    return out


async def status_count(deps: Deps, status: str, queue: str | None = None) -> int:
    """How many jobs have ``status`` (in ``queue``, or in all queues)."""
    counts = await queue_counts(deps)
    return sum(c.get(status, 0) for q, c in counts.items() if queue is None or q == queue)
