"""Operations that keep dispatch honest: lease reaping, delayed-job promotion, reconcile.

All are idempotent and safe to run from several scheduler processes at once: Postgres rows are
taken with ``FOR UPDATE SKIP LOCKED`` and every Redis step is a replay-safe script.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from jobline.shared.core import sql
from jobline.shared.core.jobs import fail, translate_errors
from jobline.shared.core.models import Outcome, Status
from jobline.shared.dispatch.redis_dispatch import (
    DispatchEntry,
    QueueControls,
    by_queue,
    ready_score,
)
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.ids import uuid7_floor

log = logging.getLogger("jobline.maintenance")

PAGE = 5_000


@dataclass(frozen=True, slots=True)
class ReapReport:
    expired: int
    #: Redis lease entries whose job was no longer running in Postgres (fixed up).
    stale_redis_leases: int


@translate_errors
async def reap_expired_leases(deps: Deps, limit: int = 1_000) -> ReapReport:
    """Fail every attempt whose lease expired (worker died or hung) and re-dispatch its job.

    The attempt counts (a crash is an attempt), so a poison pill stops at ``max_attempts``. Then
    sweep Redis leases that expired: each is checked against Postgres and moved to where the job
    really is (this also repairs a crash between a Postgres write and its Redis mirror).
    """
    now = deps.clock.now_ms()
    expired = 0
    async with deps.pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(sql.EXPIRED_LEASES, to_dt(now), limit)
        if rows:
            outcomes = [Outcome(id=r["id"], token=r["lease_token"], ok=False,
                                error="lease expired: worker lost or unresponsive",
                                error_type="lease_expired", finished_ms=now) for r in rows]
            backoffs = [orjson.loads(r["backoff"]) if isinstance(r["backoff"], str)
                        else r["backoff"] for r in rows]
            rep = await fail(deps, outcomes, [r["attempts"] for r in rows], backoffs, conn=conn,
                             outcome_label="lease_expired")
            expired = len(rep.accepted)
    stale = await sweep_redis_leases(deps, now)
    if expired or stale:
        log.info("reaped %d expired leases, fixed %d stale Redis leases", expired, stale)
    return ReapReport(expired, stale)


async def sweep_redis_leases(deps: Deps, now: int) -> int:
    fixed = 0
    for q in await deps.dispatch.known_queues():
        ids = await deps.dispatch.expired_leases(q, now)
        if not ids:
            continue
        rows = {r["id"]: r for r in await deps.pool.fetch(sql.JOB_STATUSES, ids)}
        quads: list[tuple[str, str, int, int]] = []
        gone: list[tuple[str, uuid.UUID]] = []
        requeue: list[DispatchEntry] = []
        for job_id in ids:
            r = rows.get(job_id)
            if r is None or r["status"] not in ("pending", "scheduled", "processing"):
                gone.append((q, job_id))
            elif r["status"] == "processing":
                quads.append((str(job_id), "l", from_dt(r["lease_expires_at"]), 0))
            else:
                requeue.append(DispatchEntry(job_id, r["priority"], r["seq"],
                                             from_dt(r["scheduled_for"])))
        await deps.dispatch.remove(gone)
        await deps.dispatch.reconcile_entries(q, quads)
        # enqueue also removes the lease entry, atomically with re-adding the job
        await deps.dispatch.enqueue(q, requeue, now)
        fixed += len(gone) + len(requeue)
    return fixed


@translate_errors
async def promote_due(deps: Deps) -> tuple[int, int | None]:
    """Move due delayed jobs to ready across all queues. Returns (moved, next due ms)."""
    queues = await deps.dispatch.known_queues()
    return await deps.dispatch.promote(queues, deps.clock.now_ms())


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    scanned: int
    added: int


@translate_errors
async def reconcile(deps: Deps) -> ReconcileReport:
    """Rebuild Redis dispatch state from Postgres: every pending, scheduled and running job is put
    back where it belongs unless it is already there. Safe at any time, under load; after a
    FLUSHALL it restores everything. Sets the epoch marker whose absence signals lost state."""
    now = deps.clock.now_ms()
    scanned = added = 0
    # Queue controls first: after a flush a paused queue must be paused (and a cap in place)
    # before its jobs are back in ready for any worker to claim. Also registers every queue name.
    await deps.dispatch.set_queue_meta(
        QueueControls(r["name"], r["paused"], r["max_in_flight"], r["controls_version"],
                      r["rate_limit"], r["rate_window_ms"])
        for r in await deps.pool.fetch(sql.QUEUE_CONTROLS))
    scanned, added = await _restore_range(
        deps, (Status.PROCESSING, Status.PENDING, Status.SCHEDULED), uuid.UUID(int=0),
        uuid.UUID(int=(1 << 128) - 1), now)
    await deps.dispatch.set_epoch(str(now))
    if added:
        log.warning("reconcile restored %d dispatch entries (scanned %d jobs)", added, scanned)
    return ReconcileReport(scanned, added)


def _reconcile_entry(r: Any, status: Status, now: int) -> tuple[str, str, int, int]:
    """Where ``reconcile.lua`` puts a job back: its lease (``l``), ready (``r``) or delayed
    (``d``, with the ready score it gets when due)."""
    if status == Status.PROCESSING:
        return (str(r["id"]), "l", from_dt(r["lease_expires_at"]), 0)
    rs = ready_score(r["priority"], r["seq"])
    due = from_dt(r["scheduled_for"])
    return (str(r["id"]), "r", rs, 0) if due <= now else (str(r["id"]), "d", due, rs)


async def _restore_range(deps: Deps, statuses: tuple[Status, ...], lo: uuid.UUID,
                         hi: uuid.UUID, now: int) -> tuple[int, int]:
    """Put jobs with ids in (lo, hi) and the given statuses back into Redis where missing."""
    scanned = added = 0
    for status in statuses:
        last = lo
        while True:
            rows = await deps.pool.fetch(sql.DISPATCHABLE_PAGE, last, PAGE, status.value, hi)
            if not rows:
                break
            last = rows[-1]["id"]
            scanned += len(rows)
            by_q = by_queue((r["queue_name"], _reconcile_entry(r, status, now)) for r in rows)
            for q, quads in by_q.items():
                added += await deps.dispatch.reconcile_entries(q, quads)
            if len(rows) < PAGE:
                break
    return scanned, added


@translate_errors
async def reconcile_recent(deps: Deps, since_ms: int, until_ms: int) -> ReconcileReport:
    """Dispatch jobs submitted in [since, until) that are pending/scheduled in Postgres but
    missing from Redis: a submitter that died (or lost Redis) between its commit and its Redis
    mirror leaves exactly those. The id is a UUIDv7, so the window is an index range scan; the
    scheduler walks it forward, checking each new job once shortly after its submission."""
    scanned, added = await _restore_range(
        deps, (Status.PENDING, Status.SCHEDULED), uuid7_floor(since_ms), uuid7_floor(until_ms),
        deps.clock.now_ms())
    if added:
        log.warning("restored %d recently submitted jobs missing from Redis", added)
    return ReconcileReport(scanned, added)


@translate_errors
async def ensure_dispatch_state(deps: Deps) -> ReconcileReport | None:
    """Reconcile if Redis lost its state (epoch marker missing: flushed or restarted empty)."""
    if await deps.dispatch.epoch() is None:
        return await reconcile(deps)
    return None


