"""``/api/v1/worker/*``: the remote-worker protocol, for workers that cannot reach the stores.

A remote worker (``jobline worker --remote URL``) does over HTTP what a direct worker does over
Postgres + Redis, with the same guarantees:

* ``claim`` leases up to ``n`` jobs; each carries a fencing ``token`` and a lease deadline;
* ``heartbeat`` extends the leases the worker still holds and answers which it lost (reaped,
  cancelled, re-run elsewhere), so the worker stops those handlers;
* ``complete`` records a batch of outcomes (``ok`` or failed); each is fenced by its token, so an
  outcome from a worker that lost its lease is rejected, never recorded twice;
* ``release`` gives unfinished jobs back at a warm shutdown without counting the attempt;
* ``wait`` blocks (long poll) until a submit wakes the queues, so an idle remote worker waits
  instead of polling.

A remote worker that dies simply stops heartbeating: its leases expire and the reaper re-runs
the jobs (at-least-once), exactly as for a direct worker.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from jobline.api.body import parse_json, read_body, single_body_limit
from jobline.api.context import ctx
from jobline.api.docs import OBJECT, Op, Resp, documented
from jobline.api.errors import JSONResponse, by_method, endpoint
from jobline.api.jobs import validate
from jobline.api.retry_policies import RetryPolicyIn
from jobline.api.schemas import _In
from jobline.shared.core import jobs as core
from jobline.shared.core import remote
from jobline.shared.core.inputs import QUEUE_PATTERN
from jobline.shared.core.models import Outcome
from jobline.shared.core.validation import MAX_RESULT_TTL_S
from jobline.shared.dispatch.redis_dispatch import Dispatch
from jobline.shared.fleet import control
from jobline.shared.platform.connections import create_redis
from jobline.shared.retry.policy import MAX_CAP_MS
from jobline.shared.security.masking import mask_text

#: Upper bounds that keep one request's work (and one Lambda invocation) small.
MAX_CLAIM = 500
MAX_BATCH = 5_000
MAX_WAIT_MS = 20_000

Uuid = Annotated[uuid.UUID, Field(strict=False)]
WorkerId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
QueueName = Annotated[str, Field(pattern=QUEUE_PATTERN)]


class ClaimIn(_In):
    worker_id: WorkerId
    #: None: every queue.
    queues: Annotated[list[QueueName], Field(min_length=1, max_length=100)] | None = None
    n: Annotated[int, Field(ge=1, le=MAX_CLAIM)] = 1
    rotate: Annotated[int, Field(ge=0)] = 0


class OutcomeIn(_In):
    id: Uuid
    token: Annotated[int, Field(ge=0)]
    status: Literal["ok", "fail"]
    result: Any = None
    error: Annotated[str, Field(max_length=4000)] | None = None
    error_type: Annotated[str, Field(max_length=200)] | None = None
    # bounded like a backoff cap: a later retry time is past the calendar PostgreSQL stores
    retry_after_ms: Annotated[int, Field(ge=0, le=MAX_CAP_MS)] | None = None
    burn_attempt: bool = True
    final: bool = False
    #: The handler saw the cancel request and stopped: the job ends cancelled.
    cancelled: bool = False
    #: The handler decorator's retry settings, the policy's third level (docs/retry-policy.md):
    #: its ``nonRetryable`` and ``backoff`` apply to this failure as for an in-process worker.
    retry_policy: RetryPolicyIn | None = None
    #: The handler's ``@job(result_ttl=...)`` in seconds (used when the job has no resultTtl).
    result_ttl: Annotated[int, Field(ge=0, le=MAX_RESULT_TTL_S)] | None = None

    def to_outcome(self) -> Outcome:
        # Finish times are the server's: a remote worker's clock is not trusted.
        return Outcome(id=self.id, token=self.token, ok=self.status == "ok", result=self.result,
                       error=self.error, error_type=self.error_type,
                       retry_after_ms=self.retry_after_ms, burn_attempt=self.burn_attempt,
                       final=self.final, cancelled=self.cancelled, result_ttl_s=self.result_ttl)


class CompleteIn(_In):
    outcomes: Annotated[list[OutcomeIn], Field(min_length=1, max_length=MAX_BATCH)]


class LeaseIn(_In):
    id: Uuid
    token: Annotated[int, Field(ge=0)]
    queue: QueueName


class HeartbeatIn(_In):
    worker_id: WorkerId
    leases: Annotated[list[LeaseIn], Field(max_length=MAX_BATCH)] = []
    #: Shown on the dashboard's worker list; optional.
    info: dict[str, Any] | None = None
    #: The worker's log lines since its last heartbeat (``GET /workers/:id/logs``).
    logs: Annotated[list[Annotated[str, Field(max_length=4000)]], Field(max_length=1000)] = []
    #: The worker's last heartbeat: it stopped cleanly (deregister it; not a crash).
    stopped: bool = False


class TokenIn(_In):
    id: Uuid
    token: Annotated[int, Field(ge=0)]


class ReleaseIn(_In):
    leases: Annotated[list[TokenIn], Field(min_length=1, max_length=MAX_BATCH)]


class WaitIn(_In):
    worker_id: WorkerId
    queues: Annotated[list[QueueName], Field(min_length=1, max_length=100)] | None = None
    timeout_ms: Annotated[int, Field(ge=0, le=MAX_WAIT_MS)] = 5_000


#: Every worker operation answers a JSON object (see each handler).
DONE = {200: Resp("Done", OBJECT)}


async def _body(request: Request) -> Any:
    return parse_json(await read_body(request, single_body_limit(ctx(request).settings) * 4))


@documented(Op("workerClaim", "Lease up to n jobs, each with a fencing token", body=ClaimIn,
                responses=DONE, errors=(400, 413, 422, 503)))
@endpoint
async def claim(request: Request) -> Response:
    body = validate(ClaimIn, await _body(request))
    deps = ctx(request).require_deps()
    queues = body.queues if body.queues is not None else await deps.dispatch.known_queues()
    res = await core.claim_batch(deps, body.worker_id, queues, body.n, body.rotate)
    return JSONResponse({
        "jobs": [{"id": str(j.id), "queue": j.queue, "jobType": j.job_type,
                  "payload": j.payload, "attempt": j.attempt, "maxAttempts": j.max_attempts,
                  "token": j.token, "timeoutMs": j.timeout_ms,
                  "leaseExpiresMs": j.lease_expires_ms, "backoff": j.backoff}
                 for j in res.jobs],
        "nextDueMs": res.next_due_ms,
        "leaseMs": deps.settings.lease_ms,
    })


@documented(Op("workerComplete", "Record outcomes (ok/fail); stale tokens are rejected",
                body=CompleteIn, responses=DONE, errors=(400, 413, 422, 503)))
@endpoint
async def complete(request: Request) -> Response:
    body = validate(CompleteIn, await _body(request))
    rep = await remote.record_outcomes(ctx(request).require_deps(),
                                       [o.to_outcome() for o in body.outcomes],
                                       [o.retry_policy.to_policy() if o.retry_policy else None
                                        for o in body.outcomes])
    return JSONResponse({"completed": [str(i) for i in rep.completed],
                         "failed": [str(i) for i in rep.failed],
                         "rejected": [str(i) for i in rep.rejected],
                         "statuses": {str(k): v.value for k, v in rep.statuses.items()}})


@documented(Op("workerHeartbeat", "Extend held leases; answers the ids this worker lost",
                body=HeartbeatIn, responses=DONE, errors=(400, 413, 422, 503)))
@endpoint
async def heartbeat(request: Request) -> Response:
    body = validate(HeartbeatIn, await _body(request))
    deps = ctx(request).require_deps()
    hb = await core.heartbeat(deps, [(le.queue, le.id, le.token) for le in body.leases])
    if body.logs:
        await control.push_logs(deps, body.worker_id,
                                [mask_text(x, deps.settings.mask_keys) or "" for x in body.logs])
    if body.stopped:
        await remote.deregister_worker(deps, body.worker_id)
        await control.mark_stopped(deps, body.worker_id)
    elif body.info is not None:
        # Heartbeats come every lease/3, so the record outlives two missed beats.
        await remote.register_worker(deps, {**body.info, "id": body.worker_id, "remote": True},
                                     max(deps.settings.lease_ms, 1000))
    # cancelRequested: the fallback path for cancel signals (remote workers get no pub/sub);
    # command: quiet/stop/restart asked of this worker (GET /api/v1/workers), null: run
    return JSONResponse({"lost": [str(i) for i in hb.lost],
                         "cancelRequested": [str(i) for i in hb.cancel_requested],
                         "command": await control.command_for(deps, body.worker_id),
                         "leaseMs": deps.settings.lease_ms})


@documented(Op("workerRelease", "Give unfinished jobs back (warm shutdown, attempt not counted)",
                body=ReleaseIn, responses=DONE, errors=(400, 413, 422, 503)))
@endpoint
async def release(request: Request) -> Response:
    body = validate(ReleaseIn, await _body(request))
    rep = await core.release(ctx(request).require_deps(),
                             [(le.id, le.token) for le in body.leases])
    return JSONResponse({"released": [str(i) for i in rep.accepted],
                         "rejected": [str(i) for i in rep.rejected]})


@documented(Op("workerWait", "Long poll until a submit wakes the queues, or the timeout",
                body=WaitIn, responses=DONE, errors=(400, 413, 422, 503)))
@endpoint
async def wait(request: Request) -> Response:
    """Long poll: answer when a submit wakes one of ``queues`` or after ``timeoutMs``.

    BLPOP holds its connection for the whole wait, so it runs on a connection of its own (opened
    only on this idle path, where its cost does not matter).
    """
    body = validate(WaitIn, await _body(request))
    deps = ctx(request).require_deps()
    assert deps.settings.redis_url
    woken = await _wait(deps.settings.redis_url, deps.settings.redis_prefix,
                        deps.settings.redis_slot_groups, body)
    return JSONResponse({"woken": woken})


@core.translate_errors
async def _wait(url: str, prefix: str, groups: int | None, body: WaitIn) -> bool:
    client = create_redis(url, blocking=True)
    d = Dispatch(client, prefix, groups)
    try:
        return await d.wait_for_work(body.queues, body.timeout_ms / 1000, owner=body.worker_id)
    finally:
        await d.aclose_waiters()
        await client.aclose()


routes = [
    by_method("/api/v1/worker/claim", {"POST": claim}, name="worker_claim"),
    by_method("/api/v1/worker/complete", {"POST": complete}, name="worker_complete"),
    by_method("/api/v1/worker/heartbeat", {"POST": heartbeat}, name="worker_heartbeat"),
    by_method("/api/v1/worker/release", {"POST": release}, name="worker_release"),
    by_method("/api/v1/worker/wait", {"POST": wait}, name="worker_wait"),
]
