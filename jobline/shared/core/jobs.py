"""The job operations: every state change of a job goes through exactly one function here (or,
for the edges out of ``waiting``, in :mod:`jobline.shared.core.waiting`), marked with the edges it
performs (:mod:`jobline.shared.core.edges`, checked against ``TRANSITIONS``).

Each takes :class:`~jobline.shared.platform.connections.Deps` explicitly and keeps nothing between calls. The
order inside every operation is the same: commit the transition in Postgres (the truth), then
mirror it into Redis (dispatch). A crash between the two leaves Redis behind Postgres, never
ahead, and ``reconcile``/the lease sweep bring it back in line; Redis entries for jobs that are
no longer dispatchable are harmless because every Postgres write is guarded by status and lease
token.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, ParamSpec, TypeVar

import asyncpg
import orjson

from jobline.shared.core import cancellation, edges, offload, progress, sql
from jobline.shared.core import counts as counts_mod
from jobline.shared.core.models import (
    TERMINAL,
    Attempt,
    ClaimedJob,
    DlqFilter,
    Job,
    JobSpec,
    Outcome,
    Status,
    Submitted,
)
from jobline.shared.core.validation import check_bulk_size, check_spec
from jobline.shared.dispatch import backpressure
from jobline.shared.dispatch.mirror import after_commit
from jobline.shared.dispatch.redis_dispatch import Dispatch, DispatchEntry, by_queue
from jobline.shared.flow import dependencies as flow
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import (
    IdempotencyConflict,
    IllegalTransition,
    NotFound,
    Unavailable,
    ValidationFailed,
)
from jobline.shared.platform.ids import uuid7_floor, uuid7_many
from jobline.shared.platform.redis_client import UNAVAILABLE_ERRORS
from jobline.shared.retry import adaptive
from jobline.shared.retry.backoff import Backoff
from jobline.shared.retry.policy import MAX_CAP_MS, RetryPolicy, merge_backoff

log = logging.getLogger("jobline.core")

P = ParamSpec("P")
T = TypeVar("T")

#: Idempotency keys are honoured for this long after the first submission.
IDEMPOTENCY_RETENTION_MS = 24 * 3_600_000


def translate_errors(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Turn driver connection failures into :class:`Unavailable` at the core's boundary."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except (asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.CannotConnectNowError,
                asyncpg.InterfaceError, ConnectionError, OSError, TimeoutError) as e:
            raise Unavailable(f"database unavailable: {type(e).__name__}") from e
        except UNAVAILABLE_ERRORS as e:  # includes a cluster mid-failover (CLUSTERDOWN, ...)
            raise Unavailable(f"redis unavailable: {type(e).__name__}") from e

    return wrapper


def _entry(row: Any) -> DispatchEntry:
    return DispatchEntry(row["id"], row["priority"], row["seq"], from_dt(row["scheduled_for"]))


def due_ms(spec: JobSpec, now: int) -> int:
    """When a submitted job may first start: ``scheduled_for_ms``, else now + ``delay_ms``."""
    if spec.scheduled_for_ms is not None:
        return spec.scheduled_for_ms
    return now + (spec.delay_ms or 0)


# --- submit ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubmitResult:
    submitted: Submitted
    #: 1-based position in the ready queue right after submission; None when delayed/duplicate.
    queue_position: int | None


#: Called inside ``submit_many``'s transaction with the connection and the ids about to be
#: inserted (``None`` for duplicates), before the INSERT (batches insert their row there).
BeforeInsert = Callable[[Any, list[uuid.UUID | None]], Awaitable[None]]
_NO_GATE = flow.Gate()
#: From this many jobs a plain batch is stored by binary COPY (below, a one-statement INSERT is
#: fewer round trips: COPY needs a transaction and a seq draw first).
COPY_MIN_JOBS = 256
COPY_COLUMNS = ("id", "seq", "queue_name", "job_type", "payload", "status", "priority",
                "max_attempts", "created_at", "scheduled_for", "updated_at", "timeout_ms",
                "batch_id", "backoff", "non_retryable", "result_ttl_s")


def _same_job(type_a: str, payload_a: str, type_b: str, payload_b: str) -> bool:
    """Whether two submissions under one idempotency key ask for the same job: same job type
    and the same payload as JSON (key order and number spelling aside). A stored payload that
    was offloaded to S3 is not fetched to compare: the job type alone decides then."""
    if type_a != type_b:
        return False
    a, b = orjson.loads(payload_a), orjson.loads(payload_b)
    return offload.is_pointer(a) or offload.is_pointer(b) or a == b


@translate_errors
async def submit_many(deps: Deps, specs: Sequence[JobSpec], *,
                      positions: bool = False, where: Callable[[int], str] | None = None,
                      hold: frozenset[int] = frozenset(),
                      before_insert: BeforeInsert | None = None,
                      limits: bool = True) -> list[SubmitResult]:
    """Insert jobs and make them dispatchable. All-or-nothing: one invalid spec rejects the batch.

    Returns one result per spec, in order. A spec whose ``idempotency_key`` is live returns the
    existing job with ``duplicate=True`` and inserts nothing. ``depends_on`` entries are job ids,
    or ints: the index of an earlier spec of this call. A job with unfinished dependencies is
    stored ``waiting`` and not dispatched (``jobline.shared.flow.dependencies``). ``where(i)`` prefixes
    error field names of spec ``i`` (default ``jobs[i].`` when there are several); specs in
    ``hold`` are stored ``waiting`` with no dependency (a batch's onComplete job).

    Submit limits live here, so every shell (REST, GraphQL, client, Lambda) gives the same
    answer: more than ``max_bulk_jobs`` jobs is :class:`ValidationFailed` (field ``jobs``,
    before any per-item work), a queue over its backlog cap is :class:`Unavailable` (after
    validation, before anything is stored; ``jobline.shared.dispatch.backpressure``). Held specs
    count towards neither: they wait, they are not queued. ``limits=False`` is for callers that
    are not client submissions or that admitted each caller already (the group committer, the
    schedule materialiser).
    """
    s = deps.settings
    if where is None:
        where = (lambda i: f"jobs[{i}].") if len(specs) > 1 else (lambda i: "")
    if limits:
        check_bulk_size(s, len(specs) - len(hold))
    payloads = [check_spec(spec, s, where(i)) for i, spec in enumerate(specs)]
    if not specs:
        return []
    if limits:
        # Free when no cap is configured (the default); else one pipelined Redis round trip.
        await backpressure.admit(deps, (spec.queue for i, spec in enumerate(specs)
                                        if i not in hold))
    for i, spec in enumerate(specs):
        for pos, d in enumerate(spec.depends_on):
            if isinstance(d, int) and not 0 <= d < i:
                raise ValidationFailed(f"{where(i)}dependsOn[{pos}]",
                                       "an index must refer to an earlier job of this request")
    now = deps.clock.now_ms()
    now_dt = to_dt(now)
    ids = uuid7_many(now, len(specs))
    given = payloads  # the JSON texts as submitted (before any offload), for key conflicts
    # Oversized payloads go to S3 first, so a committed row never points at a missing object.
    if offload.enabled(s):
        payloads = await offload.store(s, payloads, [offload.payload_key(i) for i in ids])
    # Within one batch, a repeated idempotency key maps to its first occurrence.
    first_of_key: dict[str, int] = {}
    alias: dict[int, int] = {}
    for i, spec in enumerate(specs):
        k = spec.idempotency_key
        if k is None:
            continue
        if k in first_of_key:
            alias[i] = earlier = first_of_key[k]
            if not _same_job(specs[earlier].job_type, given[earlier], spec.job_type, given[i]):
                raise IdempotencyConflict(
                    f"{where(i)}idempotencyKey",
                    f"{k!r} is already used by {where(earlier).rstrip('.') or 'another job'} of "
                    "this request, with another job type or payload")
        else:
            first_of_key[k] = i

    results: list[SubmitResult | None] = [None] * len(specs)
    dispatch: dict[str, list[DispatchEntry]] = {}
    order: dict[uuid.UUID, int] = {}

    async def insert(conn: Any, fresh: list[int], gates: dict[int, flow.Gate]
                     ) -> tuple[list[Any], dict[int, Status]]:
        """The INSERT of the ``fresh`` specs (stored retry policies resolved in SQL).

        Built column by column with comprehensions: for a bulk submit this is per-job Python
        on the hot path, and a row-wise loop appending to 15 lists cost twice as much."""
        fs = [specs[i] for i in fresh]
        dues = [due_ms(spec, now) for spec in fs]
        statuses: dict[int, Status] = {}
        for i, due in zip(fresh, dues, strict=True):
            gate = gates.get(i, _NO_GATE)
            statuses[i] = (Status.CANCELLED if gate.cancel_reason is not None
                           else Status.WAITING if gate.remaining or i in hold
                           else Status.PENDING if due <= now else Status.SCHEDULED)
        dts: dict[int, datetime] = {}  # most jobs of a call share one due time (now)
        for due in dues:
            if due not in dts:
                dts[due] = to_dt(max(due, 0))
        backoffs = [merge_backoff(spec.backoff) if spec.backoff else None for spec in fs]
        default_ma = s.default_max_attempts
        rows = await conn.fetch(
            sql.INSERT_JOBS, [ids[i] for i in fresh], [spec.queue for spec in fs],
            [spec.job_type for spec in fs], [payloads[i] for i in fresh],
            [statuses[i].value for i in fresh], [spec.priority for spec in fs],
            [spec.max_attempts for spec in fs], [dts[due] for due in dues],
            [spec.timeout_ms for spec in fs], [spec.idempotency_key for spec in fs],
            [spec.batch_id for spec in fs],
            [orjson.dumps(b).decode() if b else None for b in backoffs],
            [orjson.dumps(list(spec.non_retryable)).decode()
             if spec.non_retryable is not None else None for spec in fs],
            now_dt, [gates.get(i, _NO_GATE).remaining for i in fresh],
            [spec.handler_max_attempts or default_ma for spec in fs],
            [spec.queue_given for spec in fs], [spec.handler_timeout_ms for spec in fs],
            [spec.result_ttl_s for spec in fs])
        return rows, statuses

    async def copy_insert() -> tuple[dict[uuid.UUID, int], dict[int, Status], dict[int, str]]:
        """The same rows as :func:`insert` (for a plain batch: no keys, gates or holds) by
        binary ``COPY``, in one transaction with a ``seq`` range drawn first.

        Why a second path: for large batches COPY is the cheapest way in. asyncpg encodes the
        rows in C instead of building 15 parameter arrays in Python, and PostgreSQL skips the
        unnest/join/sort of ``INSERT_JOBS`` (bench/pg_ceiling.py). The retry policy is
        resolved by SQL too (``RESOLVE_JOB_DEFAULTS``, the precedence ``INSERT_JOBS`` uses),
        once per distinct combination: Python only looks the answers up. A registered queue
        that has no row yet is added in the same transaction."""
        default_ma = s.default_max_attempts
        combos: dict[tuple[str, int | None, str | None, int, str, bool, int | None, int | None],
                     int] = {}
        combo_of = []
        for spec in specs:
            bo = merge_backoff(spec.backoff) if spec.backoff else None
            key = (spec.job_type, spec.max_attempts, orjson.dumps(bo).decode() if bo else None,
                   spec.handler_max_attempts or default_ma, spec.queue, spec.queue_given,
                   spec.timeout_ms, spec.handler_timeout_ms)
            combo_of.append(combos.setdefault(key, len(combos)))
        keys = list(combos)
        async with deps.pool.acquire() as conn, conn.transaction():
            seqs = await conn.fetchval(sql.DRAW_SEQS, len(specs))
            resolved = {r["ord"] - 1: (r["max_attempts"], r["backoff"], r["queue_name"],
                                       r["timeout_ms"])
                        for r in await conn.fetch(
                            sql.RESOLVE_JOB_DEFAULTS, *([k[f] for k in keys] for f in range(8)))}
            new_queues = {r[2] for r in resolved.values()} - deps.known_queues
            if new_queues:
                await conn.execute(sql.UPSERT_QUEUES, sorted(new_queues), now_dt)
            statuses: dict[int, Status] = {}
            queues: dict[int, str] = {}
            dts: dict[int, datetime] = {}
            records = []
            for i, spec in enumerate(specs):
                due = due_ms(spec, now)
                status = statuses[i] = Status.PENDING if due <= now else Status.SCHEDULED
                dt = dts.get(due)
                if dt is None:
                    dt = dts[due] = to_dt(max(due, 0))
                max_attempts, backoff, queue, timeout_ms = resolved[combo_of[i]]
                queues[i] = queue
                records.append((
                    ids[i], seqs[i], queue, spec.job_type, orjson.Fragment(payloads[i]),
                    status.value, spec.priority, max_attempts,
                    now_dt, dt, now_dt, timeout_ms, spec.batch_id, backoff,
                    list(spec.non_retryable) if spec.non_retryable is not None else None,
                    spec.result_ttl_s))
            await conn.copy_records_to_table("jobs", columns=COPY_COLUMNS, records=records)
        return dict(zip(ids, seqs, strict=True)), statuses, queues

    def queues_of(fresh: list[int], rows: list[Any]) -> dict[int, str]:
        """The queue each inserted job went to (the registry's, when the submission named
        none), by index."""
        by_id = {r["id"]: r["queue_name"] for r in rows}
        return {i: by_id[ids[i]] for i in fresh}

    def record(fresh: list[int], seqs: dict[uuid.UUID, int], statuses: dict[int, Status],
               released: list[Any], queues: dict[int, str]) -> None:
        """Results and Redis entries of the inserted jobs (per job on a bulk submit's path)."""
        dispatchable = (Status.PENDING, Status.SCHEDULED)
        for i in fresh:
            spec = specs[i]
            queue = queues[i]
            job_id = ids[i]
            status = statuses[i]
            seq = seqs[job_id]
            due = due_ms(spec, now)
            for r in released:  # an onComplete job its batch released at once
                if r["id"] == job_id:
                    status, seq, due = Status(r["status"]), r["seq"], from_dt(r["scheduled_for"])
            results[i] = SubmitResult(Submitted(job_id, status, queue, seq), None)
            if status not in dispatchable:
                continue  # waiting/cancelled jobs never enter Redis
            order[job_id] = i
            dispatch.setdefault(queue, []).append(
                DispatchEntry(job_id, spec.priority, seq, due))

    if (not first_of_key and not hold and before_insert is None
            and not any(spec.depends_on for spec in specs)
            and all(spec.queue in deps.known_queues for spec in specs if spec.queue_given)):
        # The common case needs one statement, so it runs as one autocommit round trip: the
        # statement is atomic on its own (its outbox trigger included), and it commits before
        # Redis sees any id, as the transactional path below does.
        fresh = list(range(len(specs)))
        if len(specs) >= COPY_MIN_JOBS:
            seqs, statuses, queues = await copy_insert()
        else:
            rows, statuses = await insert(deps.pool, fresh, {})
            seqs = {r["id"]: r["seq"] for r in rows}
            queues = queues_of(fresh, rows)
            unlisted = set(queues.values()) - deps.known_queues
            if unlisted:
                # A registered queue seen for the first time. The queues row only lists the
                # queue and holds its controls (nothing references it), so adding it after the
                # jobs committed is safe.
                await deps.pool.execute(sql.UPSERT_QUEUES, sorted(unlisted), now_dt)
        record(fresh, seqs, statuses, [], queues)
    else:
        async with deps.pool.acquire() as conn, conn.transaction():
            duplicate_idx: set[int] = set(alias)
            if first_of_key:
                keys = list(first_of_key)
                won = {r["key"] for r in await conn.fetch(
                    sql.CLAIM_IDEMPOTENCY_KEYS, keys, [ids[first_of_key[k]] for k in keys],
                    now_dt, to_dt(now + IDEMPOTENCY_RETENTION_MS))}
                lost = [k for k in keys if k not in won]
                if lost:
                    existing = {r["key"]: r for r in await conn.fetch(
                        sql.EXISTING_IDEMPOTENCY_JOBS, lost)}
                    for k in lost:
                        i = first_of_key[k]
                        row = existing.get(k)
                        if row is None:  # key row points at a job that no longer exists
                            raise Unavailable("idempotency key race; retry", retry_after_s=1)
                        if not _same_job(row["job_type"], row["payload"], specs[i].job_type,
                                         given[i]):
                            raise IdempotencyConflict(
                                f"{where(i)}idempotencyKey",
                                f"{k!r} is already used by job {row['id']} (job type "
                                f"{row['job_type']!r}) with another job type or payload")
                        duplicate_idx.add(i)
                        results[i] = SubmitResult(
                            Submitted(row["id"], Status(row["status"]), row["queue_name"],
                                      row["seq"], duplicate=True), None)
            fresh = [i for i in range(len(specs)) if i not in duplicate_idx]
            fresh_set = set(fresh)

            def target(k: int) -> tuple[uuid.UUID, int | None]:
                """The job an index names: a job inserted now (and its index), or, for an
                idempotency duplicate, the existing job."""
                k = alias.get(k, k)  # a key repeated in this request: its first occurrence
                if k in fresh_set:
                    return ids[k], k
                r = results[k]
                assert r is not None
                return r.submitted.id, None

            deps_of: dict[int, list[tuple[int, uuid.UUID]]] = {}
            internal: dict[int, dict[uuid.UUID, int]] = {}
            for i in fresh:
                seen: set[uuid.UUID] = set()
                for pos, d in enumerate(specs[i].depends_on):
                    if isinstance(d, int):
                        did, ref = target(d)
                        if ref is not None:
                            internal.setdefault(i, {})[did] = ref
                    else:
                        did = d
                    if did not in seen:
                        seen.add(did)
                        deps_of.setdefault(i, []).append((pos, did))
            gates = await flow.resolve(conn, deps_of, internal,
                                       lambda i, pos: f"{where(i)}dependsOn[{pos}]")
            if before_insert is not None:
                await before_insert(conn, [ids[i] if i in fresh_set else None
                                           for i in range(len(specs))])
            if fresh:
                new_queues = {specs[i].queue for i in fresh
                              if specs[i].queue_given} - deps.known_queues
                if new_queues:
                    await conn.execute(sql.UPSERT_QUEUES, sorted(new_queues), now_dt)
                rows, statuses = await insert(conn, fresh, gates)
                queues = queues_of(fresh, rows)
                unlisted = set(queues.values()) - deps.known_queues - new_queues
                if unlisted:  # queues the registry chose
                    await conn.execute(sql.UPSERT_QUEUES, sorted(unlisted), now_dt)
                await flow.insert_edges(conn, [(ids[i], d) for i in fresh
                                               for _, d in deps_of.get(i, ())],
                                        [d for m in internal.values() for d in m])
                released: list[Any] = []
                born = [i for i in fresh if statuses[i] == Status.CANCELLED]
                if born:
                    await flow.cancel_at_birth(
                        conn, [(ids[i], gates[i].cancel_reason or "") for i in born], now_dt)
                    # dependents in this same request were already gated on these; only
                    # batches need to count the terminal events (which may finish a batch)
                    released = (await flow.settle(
                        conn, now_dt, batch_ids=[specs[i].batch_id for i in born])).released
                record(fresh, {r["id"]: r["seq"] for r in rows}, statuses, released, queues)
    deps.known_queues.update(dispatch)
    # Committed: from here on the jobs exist. If Redis fails now, reconcile re-dispatches them.
    with after_commit("submitted %d jobs but could not dispatch them yet", len(order)):
        ranks = await deps.dispatch.enqueue_many(dispatch, now, positions=positions)
        for q, entries in dispatch.items():
            for e, rank in zip(entries, ranks.get(q) or [], strict=False):
                i = order[e.id]
                prev = results[i]
                assert prev is not None
                results[i] = SubmitResult(prev.submitted, rank if rank > 0 else None)
    for i, j in alias.items():
        first = results[j]
        assert first is not None
        sub = first.submitted
        results[i] = SubmitResult(Submitted(sub.id, sub.status, sub.queue, sub.seq, True), None)
    return [r for r in results if r is not None]


async def submit(deps: Deps, spec: JobSpec, *, positions: bool = True) -> SubmitResult:
    return (await submit_many(deps, [spec], positions=positions))[0]


# --- claim -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimResult:
    jobs: list[ClaimedJob]
    #: When nothing was claimable: the earliest due time of a delayed job in these queues.
    next_due_ms: int | None = None


@translate_errors
async def claim_batch(deps: Deps, worker_id: str, queues: Sequence[str], n: int,
                      rotate: int = 0) -> ClaimResult:
    """Lease up to ``n`` jobs. Each returned job carries a fresh fencing ``token``.

    Redis picks the jobs (priority, then FIFO) and records leases first; Postgres then flips them
    to ``processing`` only if they are still pending/scheduled, so a job cancelled or claimed by
    someone else in between is skipped, never run twice concurrently.
    """
    now = deps.clock.now_ms()
    deadline = now + deps.settings.lease_ms
    popped, next_due = await deps.dispatch.claim(queues, n, now, deadline, rotate)
    if not popped:
        return ClaimResult([], next_due)
    return await _claim_popped(deps, worker_id, popped, deadline, now)


@translate_errors
async def wait_and_claim(deps: Deps, block: Dispatch, worker_id: str,
                         wait_on: Sequence[str] | None, timeout_s: float,
                         queues: Sequence[str], n: int, rotate: int = 0) -> ClaimResult:
    """Block until a wake-up (or ``timeout_s``), then ``claim_batch``: the Redis half runs in
    the same round trip as the wait (``Dispatch.wait_and_claim``, on ``block``, a client whose
    connection may block).

    The script reads Valkey's clock (a worker's reading from before the wait would be stale) and
    adds the offset of ``deps.clock`` over it, measured on every reply, so leases, due times and
    rate windows stay on the application clock, the one ``started_at`` and the reaper use
    (docs/redis-keys.md, "Clocks"). The offset is re-measured per call, so this suits a clock
    that runs at real speed (the system clock, skewed or not), not a stopped test clock."""
    if block.clock_offset_ms is None:
        secs, micros = await block.r.time()
        block.clock_offset_ms = deps.clock.now_ms() - (int(secs) * 1000 + int(micros) // 1000)
    offset = block.clock_offset_ms
    popped, next_due, now = await block.wait_and_claim(
        wait_on, timeout_s, worker_id, queues, n, deps.settings.lease_ms, rotate, offset)
    # ``now`` was read just before the reply: the application clock now minus Valkey's then
    # is the offset, give or take the reply's transit
    block.clock_offset_ms = deps.clock.now_ms() - (now - offset)
    if not popped:
        return ClaimResult([], next_due)
    return await _claim_popped(deps, worker_id, popped, now + deps.settings.lease_ms, now)


@edges.performs(edges.CLAIM_JOBS)
async def _claim_popped(deps: Deps, worker_id: str, popped: Sequence[tuple[str, uuid.UUID]],
                        deadline: int, now: int) -> ClaimResult:
    """The Postgres half of a claim: flip the leased jobs to processing (fenced).

    Ids Postgres refuses (cancelled meanwhile, gone, or running under another claim) are
    un-leased in Redis at once (``Dispatch.unclaim``), so they hold no slot of a capped queue
    and no rate-limit entry; a job running elsewhere gets its owner's lease entry back.
    ``now`` is the time the claim script ran with (its rate entries carry it)."""
    # A job is stamped as started at the claim's ``now``, the very time its rate-limit entry
    # carries: ``started_at`` is the observer of a queue's rate limit, and a stamp read later
    # (after the reply, with the worker's event loop busy for tens of ms under load) let two
    # processes' starts look closer than the window they were claimed a window apart in (CI,
    # stop 35). ``now`` is the application clock: read before the script here, or Valkey's
    # clock plus the measured offset in wait-and-claim mode. The SQL raises a delayed job's
    # stamp to its ``scheduled_for``: a job the scheduler promoted (on its own clock) while the
    # script was on its way is never stamped as started before it was due. An immediate job's
    # is not raised: its due time is its submitter's clock, and a submitter running ahead of
    # the worker would otherwise shorten the job's recorded run time by the difference.
    rows = await deps.pool.fetch(sql.CLAIM_JOBS, [job_id for _, job_id in popped],
                                 to_dt(now), to_dt(deadline), worker_id)
    # UPDATE ... RETURNING has no order; hand jobs out in the order Redis popped them.
    rank = {job_id: i for i, (_, job_id) in enumerate(popped)}
    if len(rows) < len(popped):
        await _unclaim_refused(deps, popped, {r["id"] for r in rows}, now)
    out = []
    for r in sorted(rows, key=lambda row: rank[row["id"]]):
        out.append(ClaimedJob(
            id=r["id"], queue=r["queue_name"], job_type=r["job_type"],
            payload=orjson.loads(r["payload"]), attempt=r["attempts"],
            max_attempts=r["max_attempts"], token=r["lease_token"], timeout_ms=r["timeout_ms"],
            lease_expires_ms=deadline, started_ms=from_dt(r["started_at"]),
            backoff=r["backoff"]))
    payloads = await offload.resolve_many(deps.settings, [j.payload for j in out])
    for j, p in zip(out, payloads, strict=True):
        j.payload = p
    return ClaimResult(out)


async def _unclaim_refused(deps: Deps, popped: Sequence[tuple[str, uuid.UUID]],
                           claimed: set[uuid.UUID], now: int) -> None:
    refused = [(q, i) for q, i in popped if i not in claimed]
    owners = {r["id"]: from_dt(r["lease_expires_at"])
              for r in await deps.pool.fetch(sql.JOB_STATUSES, [i for _, i in refused])
              if r["status"] == Status.PROCESSING and r["lease_expires_at"] is not None}
    # Nothing was committed for these ids; if Redis fails here, the lease sweep frees them.
    with after_commit("claim refused %d jobs", len(refused)):
        await deps.dispatch.unclaim(now, [(q, i, owners.get(i)) for q, i in refused])


async def claim(deps: Deps, worker_id: str, queues: Sequence[str], n: int,
                rotate: int = 0) -> list[ClaimedJob]:
    """``claim_batch`` returning just the jobs."""
    return (await claim_batch(deps, worker_id, queues, n, rotate)).jobs


# --- finish: complete / fail -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FinishReport:
    accepted: list[uuid.UUID]
    #: Outcomes whose token was stale (job reaped, re-run or cancelled meanwhile): not recorded.
    rejected: list[uuid.UUID]
    #: The status each accepted job moved to.
    statuses: dict[uuid.UUID, Status]


@translate_errors
@edges.performs(edges.COMPLETE_JOBS)
async def complete(deps: Deps, outcomes: Sequence[Outcome]) -> FinishReport:
    """Record successful attempts in one statement; stale tokens are rejected (fencing)."""
    if not outcomes:
        return FinishReport([], [], {})
    now = deps.clock.now_ms()
    # Large results go to S3 first (the row then points at them), see offload.py.
    texts = await offload.store(deps.settings,
                                [orjson.dumps(o.result).decode() for o in outcomes],
                                [offload.result_key(o.id, o.token) for o in outcomes])
    text_of = {(o.id, o.token): t for o, t in zip(outcomes, texts, strict=True)}

    def args(os: Sequence[Outcome], fast: bool) -> list[Any]:
        return [[o.id for o in os], [o.token for o in os], [text_of[(o.id, o.token)] for o in os],
                [to_dt(o.finished_ms or now) for o in os], fast,
                [o.result_ttl_s for o in os], deps.settings.result_ttl_s]

    # Fast path, one statement: jobs with no dependents and no batch (see docs/dependencies.md
    # for why the has_dependents flag cannot be missed by a concurrent submit).
    rows = list(await flow.retry_deadlock(
        lambda: deps.pool.fetch(sql.COMPLETE_JOBS, *args(outcomes, True))))
    settled = flow.Settled()
    fast = {r["id"] for r in rows}
    rest = [o for o in outcomes if o.id not in fast]
    if rest:  # jobs others depend on, batch jobs, and stale tokens (rejected again here)

        async def tx(conn: Any) -> tuple[list[Any], flow.Settled]:
            got = await conn.fetch(sql.COMPLETE_JOBS, *args(rest, False))
            # Same transaction: a dependent is released atomically with its last dependency.
            return got, await flow.settle(conn, to_dt(now), completed=[r["id"] for r in got],
                                          batch_ids=[r["batch_id"] for r in got])

        more, settled = await flow.in_transaction(deps, tx)
        rows += more
    done = {r["id"]: r["queue_name"] for r in rows}
    with after_commit("completed %d jobs", len(done)):
        # A lease left behind only costs the sweep a lookup; the record is already final.
        await deps.dispatch.release_leases([(q, i) for i, q in done.items()])
    await _dispatch_released(deps, settled, now)
    return FinishReport(list(done), [o.id for o in outcomes if o.id not in done],
                        dict.fromkeys(done, Status.COMPLETED))


def retry_at_ms(deps: Deps, o: Outcome, attempt: int, backoff: dict[str, Any] | None,
                now: int) -> int:
    """When to retry: the handler's ``Retry(after=...)``, else the job's backoff (already
    merged across levels) over the global settings, with ``deps.rng`` for the jitter."""
    if o.retry_after_ms is not None:
        # clamped like a backoff cap: further out is past the calendar PostgreSQL stores
        return now + min(max(o.retry_after_ms, 0), MAX_CAP_MS)
    s = deps.settings
    default = Backoff(s.backoff_base_ms, s.backoff_factor, s.backoff_cap_ms)
    return now + Backoff.from_json(backoff, default).delay_ms(attempt, deps.rng)


@translate_errors
@edges.performs(edges.FAIL_JOBS)
async def fail(deps: Deps, outcomes: Sequence[Outcome], attempts: Sequence[int] = (),
               backoffs: Sequence[dict[str, Any] | None] = (), *,
               conn: Any = None, outcome_label: str | None = None,
               handler_policies: Sequence[RetryPolicy | None] = ()
               ) -> FinishReport:
    """Record failed attempts: retry with backoff (full jitter), terminal ``dead_letter`` (out
    of attempts, ``final``, or a non-retryable error type), or ``cancelled`` (the outcome says so,
    or a cancel was requested while the job ran).

    ``attempts[i]`` is the attempt number that failed (for the backoff exponent), ``backoffs[i]``
    the job's own backoff and ``handler_policies[i]`` its handler's decorator settings (the third
    precedence level; only a worker knows them). The terminal decision is made in SQL from the
    row and the stored policy, so it holds even if the caller's view is stale and whichever
    worker ran the job.
    """
    if not outcomes:
        return FinishReport([], [], {})
    now = deps.clock.now_ms()
    due: list[int] = []
    handler_nr: list[str | None] = []
    merged: list[dict[str, Any] | None] = []
    for i, o in enumerate(outcomes):
        attempt = attempts[i] if i < len(attempts) else 1
        hp = handler_policies[i] if i < len(handler_policies) else None
        backoff = merge_backoff(backoffs[i] if i < len(backoffs) else None,
                                hp.timing() if hp is not None else None)
        merged.append(backoff)
        due.append(retry_at_ms(deps, o, attempt, backoff, o.finished_ms or now))
        handler_nr.append(orjson.dumps(list(hp.non_retryable)).decode()
                          if hp is not None and hp.non_retryable is not None else None)
    final = [o.final for o in outcomes]
    decisions: list[str | None] = [None] * len(outcomes)
    candidates = [i for i, o in enumerate(outcomes) if adaptive.is_candidate(o, merged[i])]
    if candidates:
        s = deps.settings
        fixed = Backoff(s.backoff_base_ms, s.backoff_factor, s.backoff_cap_ms)
        hps = [handler_policies[i] if i < len(handler_policies) else None
               for i in range(len(outcomes))]
        advice = await adaptive.advise(
            deps, outcomes, candidates,
            [due[i] - (o.finished_ms or now) for i, o in enumerate(outcomes)],
            [Backoff.from_json(b, fixed).cap_ms for b in merged],
            [hp.non_retryable if hp is not None else None for hp in hps], conn)
        for i, d in advice.items():
            decisions[i] = orjson.dumps(d.to_json()).decode()
            if d.retry:
                due[i] = (outcomes[i].finished_ms or now) + d.delay_ms
            else:
                final[i] = True
    retry_at = [to_dt(t) for t in due]
    labels = [outcome_label or ("timeout" if o.error_type == "timeout"
                                else "retry" if not o.burn_attempt else "failed")
              for o in outcomes]
    args = ([o.id for o in outcomes], [o.token for o in outcomes],
            [o.error for o in outcomes], [o.error_type for o in outcomes], retry_at,
            [o.burn_attempt for o in outcomes], final, labels,
            [to_dt(o.finished_ms or now) for o in outcomes], Status.DEAD_LETTER.value,
            # an explicit Retry (or a release) is the handler's own decision: not reclassified
            [o.retry_after_ms is None for o in outcomes], [o.cancelled for o in outcomes],
            handler_nr, list(deps.settings.non_retryable), decisions)

    async def tx(c: Any) -> tuple[list[Any], flow.Settled]:
        rows = await c.fetch(sql.FAIL_JOBS, *args)
        ended = [r for r in rows if r["status"] in TERMINAL]
        return rows, await flow.settle(c, to_dt(now),
                                       doomed=[(r["id"], r["status"]) for r in ended],
                                       batch_ids=[r["batch_id"] for r in ended])

    rows, settled = await flow.in_transaction(deps, tx, conn)
    await _mirror_after_fail(deps, rows, now)
    await _dispatch_released(deps, settled, now)
    statuses = {r["id"]: Status(r["status"]) for r in rows}
    return FinishReport(list(statuses), [o.id for o in outcomes if o.id not in statuses], statuses)


async def _dispatch_released(deps: Deps, settled: flow.Settled, now: int) -> None:
    """Mirror jobs that :func:`flow.settle` made pending/scheduled into Redis (after commit)."""
    if not settled.released:
        return
    by_q = by_queue((r["queue_name"], _entry(r)) for r in settled.released)
    with after_commit("released %d jobs", len(settled.released)):
        await deps.dispatch.enqueue_many(by_q, now)


async def _mirror_after_fail(deps: Deps, rows: Sequence[Any], now: int) -> None:
    requeue: dict[str, list[DispatchEntry]] = {}
    gone: list[tuple[str, uuid.UUID]] = []
    for r in rows:
        if r["status"] in (Status.PENDING, Status.SCHEDULED):
            requeue.setdefault(r["queue_name"], []).append(_entry(r))
        else:
            gone.append((r["queue_name"], r["id"]))
    with after_commit("recorded %d failed attempts", len(rows)):
        await deps.dispatch.enqueue_many(requeue, now)
        await deps.dispatch.release_leases(gone)


@translate_errors
async def release(deps: Deps, jobs: Sequence[tuple[uuid.UUID, int]],
                  reason: str = "worker shutdown") -> FinishReport:
    """Give leased jobs back at once (warm shutdown): back to pending, attempt not counted."""
    now = deps.clock.now_ms()
    outcomes = [Outcome(id=i, token=t, ok=False, error=None, error_type=None,
                        retry_after_ms=0, burn_attempt=False, finished_ms=now) for i, t in jobs]
    return await fail(deps, outcomes, outcome_label="released")


@dataclass(frozen=True, slots=True)
class HeartbeatReport:
    #: Jobs this worker no longer owns (reaped or re-run elsewhere): stop them.
    lost: list[uuid.UUID]
    #: Jobs still owned whose cancel was requested: signal their handlers.
    cancel_requested: list[uuid.UUID]


@translate_errors
async def heartbeat(deps: Deps, jobs: Sequence[tuple[str, uuid.UUID, int]]) -> HeartbeatReport:
    """Push the lease deadline of running jobs, and report lost leases and pending cancel
    requests (the fallback for a cancel signal lost on its way, see ``cancellation``)."""
    if not jobs:
        return HeartbeatReport([], [])
    deadline = deps.clock.now_ms() + deps.settings.lease_ms
    rows = await deps.pool.fetch(sql.EXTEND_LEASES, [j[1] for j in jobs], [j[2] for j in jobs],
                                 to_dt(deadline))
    kept = {r["id"] for r in rows}
    with after_commit("extended %d leases", len(kept)):
        await deps.dispatch.extend_leases([(q, i) for q, i, _ in jobs if i in kept], deadline)
    return HeartbeatReport([i for _, i, _ in jobs if i not in kept],
                           [r["id"] for r in rows if r["cancel_requested"]])


async def extend_leases(deps: Deps, jobs: Sequence[tuple[str, uuid.UUID, int]]) -> list[uuid.UUID]:
    """``heartbeat`` returning only the ids this worker no longer owns."""
    return (await heartbeat(deps, jobs)).lost


# --- manual transitions --------------------------------------------------------------------


@translate_errors
async def cancel(deps: Deps, job_id: uuid.UUID, reason: str | None = None) -> Status:
    """Cancel a job. Waiting, pending or scheduled: cancelled now (returns ``CANCELLED``).
    Processing: a cancel request is recorded and the worker holding the lease is signalled; the
    job ends ``cancelled`` when its attempt ends (returns ``PROCESSING``; see
    ``docs/state-machine.md`` for what each outcome then records). One statement decides which,
    so a job that starts or finishes meanwhile is never missed nor cancelled twice."""
    rows = await cancel_many(deps, [job_id], reason)
    if not rows:
        await refuse(deps, job_id, "cancel")
    return Status(rows[0]["status"])


@translate_errors
@edges.performs(edges.CANCEL_OR_REQUEST)
async def cancel_many(deps: Deps, job_ids: Sequence[uuid.UUID], reason: str | None = None, *,
                      running: bool = True) -> list[Any]:
    """Cancel the given jobs in one statement (the one place ``CANCEL_OR_REQUEST`` runs).

    Returns a row (``id``, ``queue_name``, ``status``, ``worker_id``, ``batch_id``) per job it
    acted on: ``cancelled`` ones are out of Redis dispatch afterwards and their dependents and
    batches settled in the same transaction; ``processing`` ones (only with ``running``) have
    their cancel request recorded and their worker signalled. Unknown ids and jobs in other
    states are left out: the caller decides whether that is an error.
    """
    if not job_ids:
        return []
    now = deps.clock.now_ms()

    async def tx(conn: Any) -> tuple[list[Any], flow.Settled]:
        rows = await conn.fetch(sql.CANCEL_OR_REQUEST, list(job_ids), to_dt(now), reason,
                                running)
        ended = [r for r in rows if r["status"] == Status.CANCELLED]
        if not ended:  # only requests on running jobs: nothing ended yet
            return rows, flow.Settled()
        return rows, await flow.settle(conn, to_dt(now),
                                       doomed=[(r["id"], "cancelled") for r in ended],
                                       batch_ids=[r["batch_id"] for r in ended])

    rows, settled = await flow.in_transaction(deps, tx)
    await _dispatch_released(deps, settled, now)
    for r in rows:
        if r["status"] == Status.PROCESSING:
            await cancellation.signal(deps, r["worker_id"], r["id"])
    gone = [(r["queue_name"], r["id"]) for r in rows if r["status"] == Status.CANCELLED]
    if gone:
        with after_commit("cancelled %d jobs", len(gone)):
            await deps.dispatch.remove(gone)
    return list(rows)


#: Jobs a queue purge cancels per statement.
PURGE_BATCH = 1_000


@translate_errors
async def purge_queue(deps: Deps, queue: str, *, reason: str = "queue purged",
                      batch: int = PURGE_BATCH) -> int:
    """Cancel every pending and scheduled job of ``queue`` that exists when the purge starts,
    ``batch`` at a time through :func:`cancel_many` (so dependents, batches, events and Redis
    follow as for any cancel). Running jobs are left to finish; waiting ones (blocked on
    dependencies) are not queued yet and stay. Returns how many were cancelled."""
    before = uuid7_floor(deps.clock.now_ms() + 1)
    total = 0
    while True:
        ids = [r["id"] for r in await deps.pool.fetch(sql.PURGE_CANDIDATES, queue, before, batch)]
        if not ids:
            return total
        rows = await cancel_many(deps, ids, reason, running=False)
        total += len(rows)


#: The states a manual retry starts from; the DLQ operations narrow it to dead_letter only.
RETRY_FROM: tuple[Status, ...] = edges.RETRY_JOBS.sources


@translate_errors
@edges.performs(edges.RETRY_JOBS)
async def retry(deps: Deps, f: DlqFilter, *,
                from_statuses: Sequence[Status] = RETRY_FROM) -> list[uuid.UUID]:
    """Send every job matching ``f`` whose status is in ``from_statuses`` back to pending with a
    fresh set of attempts; the one place every manual retry runs (``retry_now``,
    ``dlq.retry_from_dlq``, ``dlq.retry_dead_letters``).

    One UPDATE for the whole selection, then one enqueue script per queue in one pipeline.
    Returns the ids retried (a job retried concurrently by someone else is not among them).
    """
    if not set(from_statuses) <= set(RETRY_FROM):
        raise ValueError(f"a retry starts from {RETRY_FROM}, not {tuple(from_statuses)}")
    now = deps.clock.now_ms()
    rows = await deps.pool.fetch(sql.RETRY_JOBS, *f.args(), to_dt(now),
                                 [s.value for s in from_statuses])
    by_q = by_queue((r["queue_name"], DispatchEntry(r["id"], r["priority"], r["seq"], now))
                    for r in rows)
    # Committed as pending in Postgres; reconcile puts them back in ready if this fails.
    with after_commit("retried %d jobs", len(rows)):
        await deps.dispatch.enqueue_many(by_q, now)
    return [r["id"] for r in rows]


async def refuse(deps: Deps, job_id: uuid.UUID, action: str) -> NoReturn:
    """Raise why ``action`` did not apply to ``job_id``: 404 if unknown, else 409."""
    cur = await deps.pool.fetchrow(sql.JOB_STATUS, job_id)
    if cur is None:
        raise NotFound(f"job {job_id} not found")
    raise IllegalTransition(str(job_id), cur["status"], action)


@translate_errors
async def retry_now(deps: Deps, job_id: uuid.UUID) -> Status:
    """Send a failed (or dead-lettered) job back to pending with a fresh set of attempts."""
    if await retry(deps, DlqFilter(ids=(job_id,))):
        return Status.PENDING
    await refuse(deps, job_id, "retry")


# --- reads -----------------------------------------------------------------------------------


def _ms(v: datetime | None) -> int | None:
    return from_dt(v) if v is not None else None


@translate_errors
async def get_job(deps: Deps, job_id: uuid.UUID, *, history: bool = True) -> Job:
    r = await deps.pool.fetchrow(sql.GET_JOB, job_id)
    if r is None:
        raise NotFound(f"job {job_id} not found")
    job = _job_from_row(r)
    job.payload, job.result = await offload.resolve_many(deps.settings, [job.payload, job.result])
    if history:
        job.attempts_history = [
            Attempt(attempt=a["attempt"], worker_id=a["worker_id"],
                    started_ms=from_dt(a["started_at"]), finished_ms=from_dt(a["finished_at"]),
                    outcome=a["outcome"], error_type=a["error_type"], error=a["error"],
                    duration_ms=a["duration_ms"],
                    retry_decision=orjson.loads(a["retry_decision"])
                    if a["retry_decision"] is not None else None)
            for a in await deps.pool.fetch(sql.GET_ATTEMPTS, job_id)]
        job.depends_on = [r["depends_on"] for r in await deps.pool.fetch(
            flow.DEPENDENCIES_OF, job_id)]
        job.progress = await progress.get_progress(deps, job_id)
    return job


def _job_from_row(r: Any) -> Job:
    return Job(
        id=r["id"], queue=r["queue_name"], job_type=r["job_type"], payload=r["payload"],
        status=Status(r["status"]), priority=r["priority"], attempts=r["attempts"],
        max_attempts=r["max_attempts"], result=r["result"], error=r["error"],
        error_type=r["error_type"], created_ms=from_dt(r["created_at"]),
        started_ms=_ms(r["started_at"]), completed_ms=_ms(r["completed_at"]),
        scheduled_for_ms=from_dt(r["scheduled_for"]), timeout_ms=r["timeout_ms"],
        idempotency_key=r["idempotency_key"], worker_id=r["worker_id"], batch_id=r["batch_id"],
        seq=r["seq"],
        # .get: some reads (search, loaders) select fewer columns
        result_ttl_s=r.get("result_ttl_s"), result_expires_ms=_ms(r.get("result_expires_at")),
        result_expired=r.get("result_expired_at") is not None)


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[Job]
    total: int | None
    next_cursor: str | None


@translate_errors
async def list_jobs(deps: Deps, *, queue: str | None = None, status: str | None = None,
                    job_type: str | None = None, page: int = 1, page_size: int = 50,
                    cursor: str | None = None, with_total: bool = True) -> JobPage:
    """Newest first. ``cursor`` (the last id of the previous page) gives O(page) deep paging;
    ``page`` is offset paging for the first few pages."""
    where: list[str] = []
    args: list[Any] = []
    if queue is not None:
        args.append(queue)
        where.append(f"queue_name = ${len(args)}")
    if status is not None:
        if status not in Status.__members__.values():
            raise ValidationFailed("status", f"unknown status {status!r}")
        args.append(status)
        where.append(f"status = ${len(args)}")
    if job_type is not None:
        args.append(job_type)
        where.append(f"job_type = ${len(args)}")
    filt = " AND ".join(where) or "TRUE"
    total = None
    if with_total:
        total = await deps.pool.fetchval(f"SELECT count(*) FROM jobs WHERE {filt}", *args)
    page_args: list[Any] = list(args)
    page_where = filt
    if cursor:
        try:
            cur_id = uuid.UUID(cursor)
        except ValueError:
            raise ValidationFailed("cursor", "invalid cursor") from None
        page_args.append(cur_id)
        page_where += f" AND id < ${len(page_args)}"
        offset = 0
    else:
        offset = (page - 1) * page_size
    page_args += [page_size, offset]
    rows = await deps.pool.fetch(
        f"""SELECT id, queue_name, job_type, payload, status, priority, attempts, max_attempts,
                   result, error, error_type, created_at, started_at, completed_at,
                   scheduled_for, timeout_ms, idempotency_key, worker_id, batch_id, seq,
                   result_ttl_s, result_expires_at, result_expired_at
              FROM jobs WHERE {page_where}
             ORDER BY id DESC LIMIT ${len(page_args) - 1} OFFSET ${len(page_args)}""",
        *page_args)
    jobs = [_job_from_row(r) for r in rows]
    if any(offload.is_pointer(j.payload) or offload.is_pointer(j.result) for j in jobs):
        values = await offload.resolve_many(deps.settings,
                                            [v for j in jobs for v in (j.payload, j.result)])
        for i, j in enumerate(jobs):
            j.payload, j.result = values[2 * i], values[2 * i + 1]
    nxt = str(jobs[-1].id) if len(jobs) == page_size else None
    return JobPage(jobs, total, nxt)


@translate_errors
async def queue_stats(deps: Deps) -> list[dict[str, Any]]:
    """Per-queue counts by status (Postgres, maintained counters: no scan of ``jobs``, see
    :mod:`jobline.shared.core.counts`) plus live dispatch depth (Redis)."""
    controls = {r["name"]: r for r in await deps.pool.fetch(sql.QUEUE_CONTROLS)}
    names = set(controls)
    counts = await counts_mod.queue_counts(deps)
    names |= set(counts)
    try:
        names |= set(await deps.dispatch.known_queues())
        depth = await deps.dispatch.depth(sorted(names))
    except UNAVAILABLE_ERRORS:
        depth = {}
    out = []
    for q in sorted(names):
        c = counts.get(q, {})
        d = depth.get(q, {})
        out.append({
            "name": q,
            "pending": c.get("pending", 0),
            "scheduled": c.get("scheduled", 0),
            "waiting": c.get("waiting", 0),
            "processing": c.get("processing", 0),
            "completed": c.get("completed", 0),
            "failed": c.get("failed", 0),
            "deadLetter": c.get("dead_letter", 0),
            "cancelled": c.get("cancelled", 0),
            "ready": d.get("ready", 0),
            "delayed": d.get("delayed", 0),
            "leased": d.get("leased", 0),
            "paused": bool(controls[q]["paused"]) if q in controls else False,
            "maxInFlight": controls[q]["max_in_flight"] if q in controls else None,
            "rateLimit": ({"limit": controls[q]["rate_limit"],
                           "windowMs": controls[q]["rate_window_ms"]}
                          if q in controls and controls[q]["rate_limit"] is not None else None),
        })
    return out
