"""``jobline consumer``: kept so that existing process supervisors keep working, with nothing
left to consume.

Every effect Jobline derives from its events is made without a consumer group now: the audit log
is the outbox, and the rollups and alerts are folded by the relay in the transaction that moves
its cursor (:mod:`jobline.analytics.fold`, docs/events.md). The kinds that once had a consumer
(``audit``, ``analytics``, ``alerts``) are accepted and ignored; the process idles until stopped.
External consumers read the bus with a group of their own
(:meth:`jobline.shared.events.bus.EventBus.consumer`) and can apply their effects exactly once
with :func:`jobline.shared.events.outbox.apply_once`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

log = logging.getLogger("jobline.consumer")

#: Consumer groups Jobline runs itself: none (see the module docstring).
KINDS: tuple[str, ...] = ()
#: Kinds that once had a consumer and need none now (accepted on the command line, ignored).
RETIRED_KINDS = ("audit", "analytics", "alerts")


class ConsumerHost:
    """The ``jobline consumer`` process: no group to run, so it waits to be stopped."""

    def __init__(self, kinds: Sequence[str] = KINDS) -> None:
        self.kinds = list(kinds)
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        log.warning("jobline consumer has no group to run: the relay folds the rollups and "
                    "alerts (docs/events.md); this process only idles and can be removed")
        await self._stop.wait()

    async def close(self) -> None:
        return None


def parse_kinds(kind: str | None, kinds: str | None) -> list[str]:
    """The groups to run: ``kind`` and/or the comma-separated ``kinds`` (all when neither).
    Retired kinds are dropped with a note; unknown ones are an error."""
    asked = [k.strip() for k in ([kind] if kind else []) + (kinds or "").split(",") if k.strip()]
    out: list[str] = []
    for k in asked:
        if k in RETIRED_KINDS:
            log.warning("consumer kind %r needs no consumer any more (the audit log is the "
                        "outbox, the relay folds rollups and alerts: docs/events.md); ignored", k)
        elif k not in KINDS:
            raise ValueError(f"unknown consumer kind {k!r} (retired: {', '.join(RETIRED_KINDS)})")
        elif k not in out:
            out.append(k)
    return out if asked else list(KINDS)
