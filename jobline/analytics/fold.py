"""What ``jobline relay`` folds into PostgreSQL from each batch it publishes: the per-minute
rollups (:mod:`jobline.analytics.rollups`), then the alert rules over them
(:mod:`jobline.analytics.alerts`).

The fold writes minute rows; once a minute it also compacts the closed minutes into the hour
and day rows (:func:`jobline.analytics.rollups.compact`, migration 0030).

The relay already reads every event once, in ``seq`` order, and commits its cursor in a
transaction; folding in that transaction behind the relay's fold watermark
(:func:`jobline.shared.events.outbox.relay_once`) makes each effect exactly-once with no consumer
reading the stream back from the bus (docs/events.md, "Rollups and alerts").
"""

from __future__ import annotations

from typing import Any

from jobline.analytics import alerts, rollups
from jobline.shared.events.outbox import Fold, Record
from jobline.shared.platform.connections import Deps


def make_fold(deps: Deps, rule: alerts.SpikeRule | None = None) -> Fold:
    spike = rule or alerts.SpikeRule()

    async def fold(conn: Any, records: list[Record]) -> None:
        watermark = await rollups.apply_records(conn, records)
        # Under the relay's lock, like the fold: closed minutes go into the hour/day rows once
        # (a statement a minute) instead of every pass re-writing them.
        through = rollups.compaction_due(watermark, deps.clock.now_ms())
        if through is not None:
            await rollups.compact(conn, through)
        await alerts.evaluate_records(deps, conn, records, spike)

    return fold
