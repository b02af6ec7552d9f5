"""Worker groups: the desired process count of each group, stored in PostgreSQL.

A supervisor (``jobline worker --group NAME --processes N``) owns a group: it creates the row
with ``desired = N`` if none exists, then converges its children to the stored count, which the
API (scale to N, + / -), the autoscaler (the scheduler) and KEDA (which reads the same number)
change. Every change NOTIFYs :data:`NOTIFY_CHANNEL` with the group's name, so a supervisor reacts
at once; it re-reads every few seconds as well, so a lost notification only delays it.

Invariants: ``0 <= desired <= MAX_DESIRED``; with autoscaling on, the autoscaler keeps
``min <= desired <= max`` (a manual change inside the bounds stands until the next decision);
every change made through this module by a person is written to the audit log by the caller
(:mod:`jobline.shared.fleet.actions`), with the key that made it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobline.shared.core.jobs import translate_errors
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import NotFound, ValidationFailed

#: PostgreSQL NOTIFY channel: payload = the group whose desired count or settings changed.
NOTIFY_CHANNEL = "jobline_worker_groups"
MAX_DESIRED = 1000
DEFAULT_GROUP = "default"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def check_group_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValidationFailed("group", "1-64 characters: letters, digits, '_', '.', '-'")
    return name


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    desired: int
    #: The autoscaling settings (:class:`jobline.shared.fleet.autoscale.Settings` as JSON);
    #: None: the count is set by hand only.
    autoscale: dict[str, Any] | None
    scaled_at: datetime | None
    scaled_reason: str | None
    updated_at: datetime
    updated_by: str | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "desired": self.desired, "autoscale": self.autoscale,
                "scaledAt": self.scaled_at.isoformat() if self.scaled_at else None,
                "scaledReason": self.scaled_reason,
                "updatedAt": self.updated_at.isoformat(), "updatedBy": self.updated_by}


def _group(r: Any) -> Group:
    auto = r["autoscale"]  # decoded by the pool's jsonb codec
    return Group(r["name"], r["desired"], auto,
                 r["scaled_at"], r["scaled_reason"], r["updated_at"], r["updated_by"])


_COLS = "name, desired, autoscale, scaled_at, scaled_reason, updated_at, updated_by"
ENSURE = f"""
WITH ins AS (
    INSERT INTO worker_groups (name, desired, updated_at, updated_by) VALUES ($1, $2, $3, $4)
    ON CONFLICT (name) DO NOTHING RETURNING {_COLS})
SELECT * FROM ins UNION ALL SELECT {_COLS} FROM worker_groups WHERE name = $1 LIMIT 1
"""
GET = f"SELECT {_COLS} FROM worker_groups WHERE name = $1"
LIST = f"SELECT {_COLS} FROM worker_groups ORDER BY name"
# desired: an absolute count ($2) or a step ($3) from the stored one, clamped to [0, MAX]
# (and, with autoscaling on, to its bounds: a + past max would be undone at the next tick).
SET_DESIRED = f"""
UPDATE worker_groups SET
    desired = least(greatest(coalesce($2, desired + $3), 0), {MAX_DESIRED}),
    updated_at = $4, updated_by = $5
 WHERE name = $1
RETURNING {_COLS}
"""
UPSERT_DESIRED = f"""
INSERT INTO worker_groups (name, desired, updated_at, updated_by) VALUES ($1, $2, $3, $4)
ON CONFLICT (name) DO UPDATE SET desired = EXCLUDED.desired, updated_at = EXCLUDED.updated_at,
                                 updated_by = EXCLUDED.updated_by
RETURNING {_COLS}
"""
SET_AUTOSCALE = f"""
INSERT INTO worker_groups (name, desired, autoscale, updated_at, updated_by)
VALUES ($1, $2, $3::jsonb, $4, $5)
ON CONFLICT (name) DO UPDATE SET autoscale = EXCLUDED.autoscale,
    desired = CASE WHEN EXCLUDED.autoscale IS NULL THEN worker_groups.desired
                   ELSE least(greatest(worker_groups.desired, (EXCLUDED.autoscale->>'min')::int),
                              (EXCLUDED.autoscale->>'max')::int) END,
    updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
RETURNING {_COLS}
"""
# The autoscaler's write: only if nobody changed the group since it read it (updated_at), so a
# person's change made meanwhile is never overwritten by a decision taken on stale data.
AUTOSCALED = f"""
UPDATE worker_groups SET desired = $2, scaled_at = $3, scaled_reason = $4, updated_at = $3,
                         updated_by = 'autoscaler'
 WHERE name = $1 AND updated_at = $5
RETURNING {_COLS}
"""
NOTIFY = "SELECT pg_notify('jobline_worker_groups', $1)"
RECORD_CRASH = """
INSERT INTO worker_crashes (worker_id, group_name, at, exit_code, detail)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (worker_id) DO NOTHING
"""
RECORD_HISTORY = """
INSERT INTO worker_group_history (group_name, minute, desired, actual, busy, capacity)
VALUES ($1, date_trunc('minute', $2::timestamptz), $3, $4, $5, $6)
ON CONFLICT (group_name, minute) DO UPDATE SET desired = EXCLUDED.desired,
    actual = greatest(worker_group_history.actual, EXCLUDED.actual),
    busy = greatest(worker_group_history.busy, EXCLUDED.busy),
    capacity = greatest(worker_group_history.capacity, EXCLUDED.capacity)
"""
HISTORY = """
SELECT h.minute, h.desired, h.actual, h.busy, h.capacity,
       (SELECT count(*) FROM worker_crashes c
         WHERE c.group_name = h.group_name AND c.at >= h.minute
           AND c.at < h.minute + interval '1 minute') AS crashes
  FROM worker_group_history h
 WHERE h.group_name = $1 AND h.minute >= $2
 ORDER BY h.minute
"""
CRASHES_SINCE = """
SELECT group_name, count(*) AS n FROM worker_crashes WHERE at >= $1 GROUP BY group_name
"""
#: History and crash rows older than this are deleted (hourly, by the scheduler's fleet step).
RETENTION_DAYS = 30
PRUNE = """
WITH h AS (DELETE FROM worker_group_history WHERE minute < $1)
DELETE FROM worker_crashes WHERE at < $1
"""
RECENT_CRASHES = """
SELECT worker_id, at, exit_code, detail FROM worker_crashes WHERE group_name = $1
 ORDER BY at DESC LIMIT $2
"""


@translate_errors
async def ensure_group(deps: Deps, name: str, desired: int, *, by: str | None = None) -> Group:
    """The group's row, created with ``desired`` if it does not exist (an existing count wins:
    it is the central truth, which a supervisor's ``--processes`` only seeds)."""
    check_group_name(name)
    r = await deps.pool.fetchrow(ENSURE, name, _check_desired(desired),
                                 to_dt(deps.clock.now_ms()), by)
    return _group(r)


@translate_errors
async def get_group(deps: Deps, name: str) -> Group | None:
    r = await deps.pool.fetchrow(GET, name)
    return _group(r) if r is not None else None


@translate_errors
async def list_groups(deps: Deps) -> list[Group]:
    return [_group(r) for r in await deps.pool.fetch(LIST)]


def _check_desired(n: int) -> int:
    if not 0 <= n <= MAX_DESIRED:
        raise ValidationFailed("desired", f"must be 0-{MAX_DESIRED}")
    return n


@translate_errors
async def set_desired(deps: Deps, name: str, *, desired: int | None = None, step: int = 0,
                      by: str | None = None, create: bool = False, conn: Any = None) -> Group:
    """Scale ``name`` to ``desired`` (or by ``step``, e.g. +1 / -1). With autoscaling on, the
    result is clamped to its [min, max]. ``create``: an absolute count may create the group."""
    check_group_name(name)
    now = to_dt(deps.clock.now_ms())
    c = conn if conn is not None else deps.pool
    g = await get_group(deps, name)
    if g is not None and g.autoscale is not None:
        lo, hi = int(g.autoscale.get("min", 0)), int(g.autoscale.get("max", MAX_DESIRED))
        target = desired if desired is not None else g.desired + step
        desired, step = max(lo, min(hi, target)), 0
    if desired is not None:
        _check_desired(desired)
    if g is None and create and desired is not None:
        r = await c.fetchrow(UPSERT_DESIRED, name, desired, now, by)
    else:
        r = await c.fetchrow(SET_DESIRED, name, desired, step, now, by)
    if r is None:
        raise NotFound(f"worker group {name!r} not found")
    await c.execute(NOTIFY, name)
    return _group(r)


@translate_errors
async def set_autoscale(deps: Deps, name: str, settings: dict[str, Any] | None, *,
                        by: str | None = None, conn: Any = None) -> Group:
    """Turn autoscaling on (``settings``, already validated) or off (None)."""
    check_group_name(name)
    c = conn if conn is not None else deps.pool
    initial = int(settings["min"]) if settings else 1
    r = await c.fetchrow(SET_AUTOSCALE, name, initial, settings,  # the pool's jsonb codec
                         to_dt(deps.clock.now_ms()), by)
    await c.execute(NOTIFY, name)
    return _group(r)


@translate_errors
async def autoscaled(deps: Deps, g: Group, desired: int, reason: str) -> Group | None:
    """The autoscaler's change; None if the group changed since ``g`` was read."""
    now = to_dt(deps.clock.now_ms())
    async with deps.pool.acquire() as c:
        r = await c.fetchrow(AUTOSCALED, g.name, desired, now, reason, g.updated_at)
        if r is not None:
            await c.execute(NOTIFY, g.name)
    return _group(r) if r is not None else None


@translate_errors
async def record_crash(deps: Deps, worker_id: str, group: str, exit_code: int | None,
                       detail: str) -> bool:
    """Record that ``worker_id`` ended without a clean stop; once per worker (the supervisor
    and the lost-heartbeat sweep may both see it). True if this call recorded it."""
    res: str = await deps.pool.execute(RECORD_CRASH, worker_id, group,
                                       to_dt(deps.clock.now_ms()), exit_code, detail[:1000])
    return res.endswith(" 1")


@translate_errors
async def record_history(deps: Deps, group: str, desired: int, actual: int, busy: int,
                         capacity: int) -> None:
    await deps.pool.execute(RECORD_HISTORY, group, to_dt(deps.clock.now_ms()), desired, actual,
                            busy, capacity)


@translate_errors
async def history(deps: Deps, group: str, since_ms: int) -> list[dict[str, Any]]:
    rows = await deps.pool.fetch(HISTORY, group, to_dt(since_ms))
    return [{"minute": r["minute"].isoformat(), "desired": r["desired"], "actual": r["actual"],
             "busy": r["busy"], "capacity": r["capacity"], "crashes": r["crashes"],
             "utilization": round(r["busy"] / r["capacity"], 4) if r["capacity"] else None}
            for r in rows]


@translate_errors
async def crashes_since(deps: Deps, since_ms: int) -> dict[str, int]:
    return {r["group_name"]: r["n"] for r in await deps.pool.fetch(CRASHES_SINCE,
                                                                  to_dt(since_ms))}


@translate_errors
async def recent_crashes(deps: Deps, group: str, limit: int = 20) -> list[dict[str, Any]]:
    return [{"workerId": r["worker_id"], "at": r["at"].isoformat(), "exitCode": r["exit_code"],
             "detail": r["detail"]} for r in await deps.pool.fetch(RECENT_CRASHES, group, limit)]


@translate_errors
async def prune(deps: Deps) -> None:
    """Delete history and crash rows past :data:`RETENTION_DAYS`."""
    await deps.pool.execute(PRUNE, to_dt(deps.clock.now_ms() - RETENTION_DAYS * 86_400_000))
