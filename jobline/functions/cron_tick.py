"""Lambda ``cron_tick``: the scheduler's periodic work, fired by an EventBridge
``rate(1 minute)`` rule.

Each tick: rebuild Redis if it lost its state (epoch check), promote due delayed jobs, reap
expired leases (re-dispatching jobs of dead workers), and every ``FULL_RECONCILE_EVERY_MIN``
minutes (by the event's own timestamp, so it needs no state) a full reconcile. Every step is an
idempotent core operation, so overlapping ticks, or a tick alongside a ``jobline scheduler``
process, are harmless. A minute is coarse for delayed jobs: deployments with tight delays run
workers or a scheduler container too (docs/deploy.md).
"""

from __future__ import annotations

import importlib
import logging
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

from jobline.functions._runtime import RUNTIME

if TYPE_CHECKING:
    from jobline.shared.platform.connections import Deps

log = logging.getLogger("jobline.functions.cron_tick")

FULL_RECONCILE_EVERY_MIN = 10


def _minute(event: dict[str, Any]) -> int | None:
    try:
        return datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00")).minute
    except (KeyError, ValueError):
        return None


async def tick(deps: Deps, *, full_reconcile: bool = False) -> dict[str, Any]:
    from jobline.shared.core import maintenance
    out: dict[str, Any] = {}
    restored = await maintenance.ensure_dispatch_state(deps)
    if restored is None and full_reconcile:
        restored = await maintenance.reconcile(deps)
    out["reconciled"] = None if restored is None else {"scanned": restored.scanned,
                                                       "restored": restored.added}
    moved, next_due = await maintenance.promote_due(deps)
    out["promoted"] = moved
    out["nextDueMs"] = next_due
    reaped = await maintenance.reap_expired_leases(deps)
    out["reaped"] = reaped.expired
    out["staleLeasesFixed"] = reaped.stale_redis_leases
    # Cron schedules come from another module being built in parallel; until it lands this
    # step is skipped. The guard goes away when both are merged.
    schedules: ModuleType | None
    try:
        schedules = importlib.import_module("jobline.shared.schedules.recurring")
    except ModuleNotFoundError as e:
        if e.name != "jobline.shared.schedules.recurring":
            raise  # the module exists but is broken: say so
        schedules = None
    if schedules is not None:
        out["schedules"] = _jsonable(await schedules.cron_tick(deps))
    return out


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    minute = _minute(event)
    full = minute is not None and minute % FULL_RECONCILE_EVERY_MIN == 0

    async def run(deps: Deps) -> dict[str, Any]:
        return await tick(deps, full_reconcile=full)

    result = RUNTIME.run(run)
    log.info("cron tick: %s", result)
    return result
