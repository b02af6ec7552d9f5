"""API CPU per event of a ``jobEventBatches`` message, by selection (no stack needed).

Resolves 500 bus events as ``JobEvent`` through the app's own Strawberry types, selecting what the
Jobs page selects (``type jobId data``) and the full 8 fields the batched feed used to carry, and,
for comparison, a variant whose fields are resolver methods computed only when selected (the
"lazy" idea: measured slower, because a resolver call costs more than building the field). CPU
time (``time.process_time``), best of 4 repeats of 10 executions, so a loaded machine's waiting
does not count.

    python bench/graphql_event_cost.py

Not a test: nothing here asserts a speed (docs/dashboard.md quotes it).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import strawberry

from jobline.graphql.types import JSON, JobEvent
from jobline.shared.events.outbox import Event as CoreEvent
from jobline.shared.platform.clock import to_dt


@strawberry.type
class LazyEvent:
    raw: strawberry.Private[CoreEvent]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.raw.id))

    @strawberry.field
    def type(self) -> str:
        return self.raw.type

    @strawberry.field
    def time(self) -> datetime:
        return to_dt(self.raw.time_ms)

    @strawberry.field
    def job_id(self) -> strawberry.ID | None:
        return strawberry.ID(str(self.raw.job_id)) if self.raw.job_id else None

    @strawberry.field
    def queue(self) -> str | None:
        return self.raw.queue

    @strawberry.field
    def job_type(self) -> str | None:
        return self.raw.job_type

    @strawberry.field
    def error_type(self) -> str | None:
        return self.raw.error_type

    @strawberry.field
    def data(self) -> JSON:
        return JSON(self.raw.data)


EVENTS = [CoreEvent(id=uuid.uuid4(), type="jobs.completed", time_ms=1_700_000_000_000,
                    job_id=uuid.uuid4(), queue="load", job_type="demo.noop", attempt=1,
                    duration_ms=3, wait_ms=5, data={}, seq=i) for i in range(500)]


@strawberry.type
class Query:
    @strawberry.field
    def eager(self) -> list[JobEvent]:
        return [JobEvent.of(e) for e in EVENTS]

    @strawberry.field
    def lazy(self) -> list[LazyEvent]:
        return [LazyEvent(raw=e) for e in EVENTS]


def main() -> None:
    schema = strawberry.Schema(query=Query)
    best: dict[tuple[str, str], float] = {}
    for _ in range(4):
        for kind in ("eager", "lazy"):
            for sel in ("type jobId data", "id type time jobId queue jobType errorType data"):
                q = f"{{ {kind} {{ {sel} }} }}"
                t = time.process_time()
                for _ in range(10):
                    r = schema.execute_sync(q)
                    assert not r.errors, r.errors
                us = (time.process_time() - t) / 10 / len(EVENTS) * 1e6
                best[kind, sel] = min(best.get((kind, sel), us), us)
    print("| JobEvent | selection | CPU per event |\n|---|---|---|")
    for (kind, sel), us in best.items():
        print(f"| {kind} | `{sel}` | {us:.1f} µs |")


if __name__ == "__main__":
    main()
