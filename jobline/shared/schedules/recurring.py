"""Cron schedules: create/read/update/delete, and ``cron_tick``, which turns due fire times into
jobs through the normal submit path.

Exactly once per fire time, with any number of schedulers ticking at once:
  * ``cron_tick`` takes due schedule rows with ``FOR UPDATE SKIP LOCKED``, so two schedulers never
    work on the same schedule at the same time, and advances ``next_run_at`` in that transaction;
  * each run's job is submitted with the idempotency key ``jobline:cron:<id>:<fire ms>`` (a
    unique index in Postgres), and ``schedule_runs`` has the primary key (schedule, fire time).
    A scheduler that dies after submitting but before committing the advance leaves the row due;
    the next tick submits the same key again and gets the existing job back, not a second one.

Missed fire times: a fire time more than ``MISFIRE_GRACE_MS`` in the past when the tick sees it
counts as missed (the scheduler was down or stalled). ``catchUp = "run_once"`` submits one run
for all missed fire times of a schedule, ``"skip"`` drops them; fire times within the grace run
normally either way. ``overlapPolicy = "skip"`` skips a fire time (recorded as
``skipped_overlap``) while the schedule's previous job is not finished.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from jobline.shared.core import jobs, sql
from jobline.shared.core.jobs import translate_errors
from jobline.shared.core.models import PRIORITY_DEFAULT, TERMINAL, JobSpec, Status
from jobline.shared.core.validation import check_spec
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import NotFound, ValidationFailed
from jobline.shared.platform.ids import uuid7
from jobline.shared.schedules.cron import CronSchedule

log = logging.getLogger("jobline.schedules")

#: A fire time older than this when the tick sees it is "missed" (see the module docstring).
MISFIRE_GRACE_MS = 5_000
#: Schedules handled per tick transaction; a full batch makes the caller tick again at once.
TICK_BATCH = 100
OVERLAP_POLICIES = ("skip", "allow")
CATCH_UP_POLICIES = ("skip", "run_once")
#: Idempotency keys with this prefix are reserved for schedule runs.
KEY_PREFIX = "jobline:cron:"
MAX_NAME = 200

_COLUMNS = """id, name, queue_name, job_type, payload, schedule, timezone, enabled, overlap_policy,
       catch_up, priority, max_attempts, timeout_ms, next_run_at, last_run_at, last_job_id,
       created_at, updated_at"""

INSERT_SCHEDULE = f"""
INSERT INTO schedules (id, name, queue_name, job_type, payload, schedule, timezone, enabled,
                       overlap_policy, catch_up, priority, max_attempts, timeout_ms, next_run_at,
                       created_at, updated_at)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)
RETURNING {_COLUMNS}
"""

GET_SCHEDULE = f"SELECT {_COLUMNS} FROM schedules WHERE id = $1"

GET_SCHEDULE_FOR_UPDATE = f"SELECT {_COLUMNS} FROM schedules WHERE id = $1 FOR UPDATE"

LIST_SCHEDULES = f"SELECT {_COLUMNS} FROM schedules ORDER BY created_at, id"

UPDATE_SCHEDULE = f"""
UPDATE schedules
   SET name = $2, queue_name = $3, job_type = $4, payload = $5::jsonb, schedule = $6,
       timezone = $7, enabled = $8, overlap_policy = $9, catch_up = $10, priority = $11,
       max_attempts = $12, timeout_ms = $13, next_run_at = $14, updated_at = $15
 WHERE id = $1
RETURNING {_COLUMNS}
"""

# Runs go with their schedule: the history is about that schedule only.
DELETE_SCHEDULE = """
WITH gone AS (DELETE FROM schedules WHERE id = $1 RETURNING id),
     runs AS (DELETE FROM schedule_runs r USING gone WHERE r.schedule_id = gone.id)
SELECT id FROM gone
"""

DUE_SCHEDULES = f"""
SELECT {_COLUMNS} FROM schedules
 WHERE enabled AND next_run_at <= $1
 ORDER BY next_run_at
 LIMIT $2
   FOR UPDATE SKIP LOCKED
"""

# No subquery without an alias here: PostgreSQL allows that only from 16, Jobline supports 14-18.
INSERT_RUNS = """
INSERT INTO schedule_runs (schedule_id, fire_at, job_id, outcome, created_at)
SELECT r.*, $5::timestamptz FROM unnest($1::uuid[], $2::timestamptz[], $3::uuid[], $4::text[]) AS r
ON CONFLICT (schedule_id, fire_at) DO NOTHING
"""

ADVANCE_SCHEDULE = """
UPDATE schedules
   SET next_run_at = $2, last_run_at = coalesce($3, last_run_at),
       last_job_id = coalesce($4, last_job_id)
 WHERE id = $1
"""

# Including rows another scheduler holds right now: then the earliest is already due.
EARLIEST_FIRE = "SELECT min(next_run_at) FROM schedules WHERE enabled"

SCHEDULE_RUNS = """
SELECT fire_at, job_id, outcome FROM schedule_runs WHERE schedule_id = $1 ORDER BY fire_at
"""


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """What a schedule submits, and when."""

    name: str
    queue: str
    job_type: str
    payload: dict[str, Any]
    schedule: str
    timezone: str = "UTC"
    enabled: bool = True
    overlap_policy: str = "allow"
    catch_up: str = "run_once"
    priority: int = PRIORITY_DEFAULT
    max_attempts: int | None = None
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    id: uuid.UUID
    spec: ScheduleSpec
    #: Earliest fire time not handled yet (None: never fires again).
    next_run_ms: int | None
    last_run_ms: int | None
    last_job_id: uuid.UUID | None
    created_ms: int
    updated_ms: int
    #: The next fire times after "now" (empty while disabled).
    next_runs: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ScheduleRun:
    fire_ms: int
    job_id: uuid.UUID | None
    outcome: str


#: Fields ``update_schedule`` accepts (the ScheduleSpec attribute names).
UPDATABLE = frozenset(ScheduleSpec.__dataclass_fields__)


def _check(spec: ScheduleSpec, deps: Deps) -> CronSchedule:
    if not isinstance(spec.name, str) or not 1 <= len(spec.name) <= MAX_NAME or "\x00" in spec.name:
        raise ValidationFailed("name", f"must be 1-{MAX_NAME} characters")
    if spec.overlap_policy not in OVERLAP_POLICIES:
        raise ValidationFailed("overlapPolicy", "must be 'skip' or 'allow'")
    if spec.catch_up not in CATCH_UP_POLICIES:
        raise ValidationFailed("catchUp", "must be 'skip' or 'run_once'")
    if not isinstance(spec.enabled, bool):
        raise ValidationFailed("enabled", "must be a boolean")
    check_spec(_job_spec(spec), deps.settings)
    return CronSchedule.parse(spec.schedule, spec.timezone)


def _job_spec(spec: ScheduleSpec, due_ms: int | None = None, key: str | None = None) -> JobSpec:
    return JobSpec(queue=spec.queue, job_type=spec.job_type, payload=spec.payload,
                   priority=spec.priority, max_attempts=spec.max_attempts,
                   scheduled_for_ms=due_ms, timeout_ms=spec.timeout_ms, idempotency_key=key)


def _ms(v: datetime | None) -> int | None:
    return from_dt(v) if v is not None else None


def _spec_of(r: Any) -> ScheduleSpec:
    return ScheduleSpec(name=r["name"], queue=r["queue_name"], job_type=r["job_type"],
                        payload=r["payload"], schedule=r["schedule"], timezone=r["timezone"],
                        enabled=r["enabled"], overlap_policy=r["overlap_policy"],
                        catch_up=r["catch_up"], priority=r["priority"],
                        max_attempts=r["max_attempts"], timeout_ms=r["timeout_ms"])


def _schedule(r: Any, now_ms: int) -> Schedule:
    spec = _spec_of(r)
    runs: list[int] = []
    if spec.enabled:
        try:
            runs = CronSchedule.parse(spec.schedule, spec.timezone).next_runs(now_ms, 5)
        except ValidationFailed:  # e.g. a timezone dropped from the tz database since
            runs = []
    return Schedule(id=r["id"], spec=spec, next_run_ms=_ms(r["next_run_at"]),
                    last_run_ms=_ms(r["last_run_at"]), last_job_id=r["last_job_id"],
                    created_ms=from_dt(r["created_at"]), updated_ms=from_dt(r["updated_at"]),
                    next_runs=runs)


async def _wake(deps: Deps) -> None:
    try:
        await deps.dispatch.wake_cron()
    except Exception as e:  # the schedulers' bounded sleep picks the change up anyway
        log.warning("could not wake the cron loop: %s", e)


def _row_args(spec: ScheduleSpec, next_ms: int | None, now: int) -> tuple[Any, ...]:
    """``$2``..``$15`` of INSERT_SCHEDULE and UPDATE_SCHEDULE: the spec, next run, now."""
    return (spec.name, spec.queue, spec.job_type, spec.payload, spec.schedule, spec.timezone,
            spec.enabled, spec.overlap_policy, spec.catch_up, spec.priority, spec.max_attempts,
            spec.timeout_ms, to_dt(next_ms) if next_ms is not None else None, to_dt(now))


@translate_errors
async def create_schedule(deps: Deps, spec: ScheduleSpec) -> Schedule:
    cron = _check(spec, deps)
    now = deps.clock.now_ms()
    nxt = cron.next_after(now) if spec.enabled else None
    row = await deps.pool.fetchrow(INSERT_SCHEDULE, uuid7(now), *_row_args(spec, nxt, now))
    await _wake(deps)
    return _schedule(row, now)


@translate_errors
async def get_schedule(deps: Deps, schedule_id: uuid.UUID) -> Schedule:
    row = await deps.pool.fetchrow(GET_SCHEDULE, schedule_id)
    if row is None:
        raise NotFound(f"schedule {schedule_id} not found")
    return _schedule(row, deps.clock.now_ms())


@translate_errors
async def list_schedules(deps: Deps) -> list[Schedule]:
    now = deps.clock.now_ms()
    return [_schedule(r, now) for r in await deps.pool.fetch(LIST_SCHEDULES)]


@translate_errors
async def schedule_runs(deps: Deps, schedule_id: uuid.UUID) -> list[ScheduleRun]:
    return [ScheduleRun(from_dt(r["fire_at"]), r["job_id"], r["outcome"])
            for r in await deps.pool.fetch(SCHEDULE_RUNS, schedule_id)]


@translate_errors
async def update_schedule(deps: Deps, schedule_id: uuid.UUID,
                          changes: Mapping[str, Any]) -> Schedule:
    """Change some fields (``ScheduleSpec`` attribute names). A new expression, timezone or
    re-enabling starts from the next fire time after now: no catch-up for the time before."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValidationFailed(sorted(unknown)[0], "is not a schedule field")
    now = deps.clock.now_ms()
    async with deps.pool.acquire() as conn, conn.transaction():
        cur = await conn.fetchrow(GET_SCHEDULE_FOR_UPDATE, schedule_id)
        if cur is None:
            raise NotFound(f"schedule {schedule_id} not found")
        old = _spec_of(cur)
        spec = replace(old, **changes)
        cron = _check(spec, deps)
        nxt = _ms(cur["next_run_at"])
        if (spec.schedule, spec.timezone) != (old.schedule, old.timezone) or (
                spec.enabled and not old.enabled) or nxt is None:
            nxt = cron.next_after(now)
        row = await conn.fetchrow(UPDATE_SCHEDULE, schedule_id, *_row_args(spec, nxt, now))
    await _wake(deps)
    return _schedule(row, now)


@translate_errors
async def delete_schedule(deps: Deps, schedule_id: uuid.UUID) -> None:
    """Delete a schedule and its run history; jobs it already submitted are not touched."""
    if await deps.pool.fetchval(DELETE_SCHEDULE, schedule_id) is None:
        raise NotFound(f"schedule {schedule_id} not found")
    await _wake(deps)


# --- the tick ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TickReport:
    #: Jobs submitted (including one per caught-up schedule).
    submitted: int
    #: Fire times skipped because the previous run was unfinished.
    skipped_overlap: int
    #: Schedules that had missed fire times (dropped, or folded into one catch-up run).
    missed: int
    #: Earliest fire time still to handle (may be <= now while another scheduler holds it).
    next_fire_ms: int | None
    #: A full batch was handled: tick again at once.
    more: bool = False


@dataclass
class _Plan:
    row: Any
    #: (fire ms, outcome, job due ms) per run
    runs: list[tuple[int, str, int]]
    next_ms: int | None


def plan_runs(cron: CronSchedule, next_ms: int, now: int, catch_up: str,
              grace_ms: int = MISFIRE_GRACE_MS) -> tuple[list[tuple[int, str, int]], int | None,
                                                         bool]:
    """Due fire times from ``next_ms`` up to ``now``: (runs, new next fire time, any missed).

    A run is (fire time, "submitted" | "caught_up", when its job is due)."""
    runs: list[tuple[int, str, int]] = []
    missed_first: int | None = None
    f: int | None = next_ms
    while f is not None and f <= now:
        if now - f > grace_ms:
            if missed_first is None:
                missed_first = f
            # jump over the whole outage in one step (a seconds schedule down for a day
            # has 86,400 missed fire times): the next candidate is the first within the grace
            f = cron.next_after(max(f, now - grace_ms - 1))
            continue
        runs.append((f, "submitted", f))
        f = cron.next_after(f)
    if missed_first is not None and catch_up == "run_once":
        runs.insert(0, (missed_first, "caught_up", now))
    return runs, f, missed_first is not None


@translate_errors
async def cron_tick(deps: Deps, *, limit: int = TICK_BATCH,
                    grace_ms: int = MISFIRE_GRACE_MS) -> TickReport:
    """Submit every due run of every enabled schedule exactly once; advance the schedules."""
    now = deps.clock.now_ms()
    submitted = skipped = missed = 0
    async with deps.pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(DUE_SCHEDULES, to_dt(now), limit)
        plans: list[_Plan] = []
        for r in rows:
            try:
                cron = CronSchedule.parse(r["schedule"], r["timezone"])
            except ValidationFailed as e:
                log.error("schedule %s can no longer fire (%s); parking it", r["id"], e)
                plans.append(_Plan(r, [], None))
                continue
            runs, nxt, had_missed = plan_runs(cron, from_dt(r["next_run_at"]), now,
                                              r["catch_up"], grace_ms)
            missed += had_missed
            plans.append(_Plan(r, runs, nxt))
        specs: list[JobSpec] = []
        owners: list[tuple[_Plan, int]] = []
        outcomes: dict[tuple[uuid.UUID, int], str] = {}
        for p in plans:
            busy = False
            if p.row["overlap_policy"] == "skip" and p.runs and p.row["last_job_id"] is not None:
                busy = await _unfinished(conn, p.row["last_job_id"])
            spec = _spec_of(p.row)
            for fire, outcome, due in p.runs:
                if busy and p.row["overlap_policy"] == "skip":
                    outcomes[(p.row["id"], fire)] = "skipped_overlap"
                    skipped += 1
                    continue
                specs.append(_job_spec(spec, due, f"{KEY_PREFIX}{p.row['id']}:{fire}"))
                owners.append((p, fire))
                outcomes[(p.row["id"], fire)] = outcome
                busy = True
        # The normal submit path, in its own transaction: committed before this one, so a crash
        # in between re-submits the same idempotency keys and gets the same jobs back. Firings
        # are not client submissions: the bulk and backlog caps (limits=False) do not apply, as
        # they did not when the caps lived in the REST shell; a refused firing would be lost.
        results = await jobs.submit_many(deps, specs, limits=False) if specs else []
        job_of: dict[tuple[uuid.UUID, int], uuid.UUID] = {}
        for (p, fire), res in zip(owners, results, strict=True):
            job_of[(p.row["id"], fire)] = res.submitted.id
            if not res.submitted.duplicate:
                submitted += 1
        if outcomes:
            keys = list(outcomes)
            await conn.execute(INSERT_RUNS, [k[0] for k in keys], [to_dt(k[1]) for k in keys],
                               [job_of.get(k) for k in keys], [outcomes[k] for k in keys],
                               to_dt(now))
        for p in plans:
            fired = [f for f, _, _ in p.runs if (p.row["id"], f) in job_of]
            last_job = job_of[(p.row["id"], max(fired))] if fired else None
            await conn.execute(ADVANCE_SCHEDULE, p.row["id"],
                               to_dt(p.next_ms) if p.next_ms is not None else None,
                               to_dt(max(fired)) if fired else None, last_job)
        earliest = await conn.fetchval(EARLIEST_FIRE)
    nxt_ms = _ms(earliest)
    return TickReport(submitted, skipped, missed, nxt_ms, more=len(rows) >= limit)


async def _unfinished(conn: Any, job_id: uuid.UUID) -> bool:
    row = await conn.fetchrow(sql.JOB_STATUS, job_id)
    return row is not None and Status(row["status"]) not in TERMINAL
