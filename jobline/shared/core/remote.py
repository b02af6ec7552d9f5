"""Core operations behind the remote-worker protocol (``/api/v1/worker/*``).

A remote worker cannot reach Postgres or Redis; it claims, heartbeats and records outcomes
through the API, which calls these functions (and :mod:`jobline.shared.core.jobs`). The guarantees are
the direct worker's: every outcome is fenced by the claim's lease token, so a late write from a
worker that lost its lease is rejected, never recorded twice.

Nothing the client says about a job is trusted beyond its id and token: the attempt number and
the job's own retry settings used for the backoff are read from Postgres, and finish times are
the server's. The one thing only the worker knows is its handler's decorator settings, the
policy's third level; they come with each failure and rank below the job's and the stored
policy's, as for an in-process worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from jobline.shared.core import jobs
from jobline.shared.core.models import Outcome, Status
from jobline.shared.observe import workers
from jobline.shared.platform.connections import Deps
from jobline.shared.retry.policy import RetryPolicy, check_policy

#: The attempt number and retry policy of jobs being failed (for the backoff exponent).
RETRY_POLICY = """
SELECT id, attempts, backoff FROM jobs WHERE id = ANY($1::uuid[])
"""


@dataclass(frozen=True, slots=True)
class RecordReport:
    completed: list[uuid.UUID]
    failed: list[uuid.UUID]
    #: Outcomes whose lease token was stale: not recorded (the job belongs to someone else now).
    rejected: list[uuid.UUID]
    statuses: dict[uuid.UUID, Status]


@jobs.translate_errors
async def record_outcomes(deps: Deps, outcomes: Sequence[Outcome],
                          handler_policies: Sequence[RetryPolicy | None] = ()) -> RecordReport:
    """Record a batch of finished attempts: successes in one ``complete``, failures in one
    ``fail`` (retry with backoff or dead-letter), each fenced by its token.
    ``handler_policies[i]`` is the handler's retry settings sent with ``outcomes[i]``
    (validated here like a stored policy)."""
    policy_of = {o.id: check_policy(p, f"outcomes[{i}].retryPolicy.")
                 for i, (o, p) in enumerate(zip(outcomes, handler_policies, strict=False))
                 if p is not None}
    oks = [o for o in outcomes if o.ok]
    bad = [o for o in outcomes if not o.ok]
    done = await jobs.complete(deps, oks)
    attempts: list[int] = []
    backoffs: list[dict[str, Any] | None] = []
    if bad:
        rows = {r["id"]: r for r in await deps.pool.fetch(RETRY_POLICY, [o.id for o in bad])}
        for o in bad:
            r = rows.get(o.id)
            attempts.append(r["attempts"] if r is not None else 1)
            b = r["backoff"] if r is not None else None
            backoffs.append(orjson.loads(b) if isinstance(b, str) else b)
    failed = await jobs.fail(deps, bad, attempts, backoffs,
                             handler_policies=[policy_of.get(o.id) for o in bad])
    return RecordReport(done.accepted, failed.accepted, done.rejected + failed.rejected,
                        {**done.statuses, **failed.statuses})



# The registry itself (keys, reads, writes) is jobline.shared.observe.workers.
register_worker = workers.register_worker
deregister_worker = workers.deregister_worker
