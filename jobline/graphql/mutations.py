"""The ``Mutation`` root: every write goes through the same core operation as its REST route,
so the limits (bulk size, backlog cap) and validation are the core's."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from jobline.shared.core import jobs as jobs_core
from jobline.shared.core.models import Status
from jobline.shared.core.validation import check_bulk_size
from jobline.shared.dispatch import queue_controls as queues
from jobline.shared.dispatch import rate_limits
from jobline.shared.flow import batches as batches_core
from jobline.shared.platform.errors import ValidationFailed
from jobline.shared.retry import dlq
from jobline.shared.schedules import recurring as schedules_core
from jobline.shared.schedules.inputs import ScheduleIn, SchedulePatchIn

from .ai import AiMutations
from .alerts import AlertMutations
from .analytics import AnalyticsMutations
from .common import A, D, ctx, parse_id
from .context import Context
from .errors import domain
from .inputs import DlqFilterInput, ScheduleInput, SubmitJobInput, spec_of
from .types import BatchCreated, BulkResult, QueueControls, Schedule, Submitted, Transition
from .workers import WorkerMutations


@strawberry.type
class Mutation(AlertMutations, AnalyticsMutations, WorkerMutations, AiMutations):
    @strawberry.mutation
    @domain
    async def submit(self, info: Info[Context, None], input: SubmitJobInput) -> Submitted:
        c = ctx(info)
        c.require(D, "submit jobs")
        spec = spec_of(input, c.deps.clock.now_ms(), "input.", c.deps.settings)
        return Submitted.of(await jobs_core.submit(c.deps, spec))

    @strawberry.mutation
    @domain
    async def submit_many(self, info: Info[Context, None],
                          inputs: list[SubmitJobInput]) -> list[Submitted]:
        c = ctx(info)
        c.require(D, "submit jobs")
        # The core refuses an oversized call too; this names the argument and skips item work.
        if not inputs:
            raise ValidationFailed("inputs", f"1-{c.deps.settings.max_bulk_jobs} jobs")
        check_bulk_size(c.deps.settings, len(inputs), "inputs")
        now = c.deps.clock.now_ms()
        specs = [spec_of(x, now, f"inputs[{i}].", c.deps.settings) for i, x in enumerate(inputs)]
        return [Submitted.of(r) for r in await jobs_core.submit_many(c.deps, specs)]

    @strawberry.mutation
    @domain
    async def cancel(self, info: Info[Context, None], id: strawberry.ID) -> Transition:
        c = ctx(info)
        c.require(D, "cancel jobs")
        status = await jobs_core.cancel(c.deps, parse_id(id, "id"))
        return Transition(id=id, status=status, cancel_requested=status == Status.PROCESSING)

    @strawberry.mutation
    @domain
    async def retry(self, info: Info[Context, None], id: strawberry.ID) -> Transition:
        c = ctx(info)
        c.require(D, "retry jobs")
        return Transition(id=id, status=await jobs_core.retry_now(c.deps, parse_id(id, "id")))

    @strawberry.mutation
    @domain
    async def retry_from_dlq(self, info: Info[Context, None], id: strawberry.ID) -> Transition:
        c = ctx(info)
        c.require(D, "retry jobs")
        return Transition(id=id, status=await dlq.retry_from_dlq(c.deps, parse_id(id, "id")))

    @strawberry.mutation(description="Retry every dead-lettered job matching (admin).")
    @domain
    async def retry_dead_letters(self, info: Info[Context, None],
                                 filter: DlqFilterInput) -> BulkResult:
        c = ctx(info)
        c.require(A, "bulk-retry the dead-letter queue")
        ids = await dlq.retry_dead_letters(c.deps, filter.to_core())
        return BulkResult(count=len(ids), ids=[strawberry.ID(str(i)) for i in ids])

    @strawberry.mutation(description="Delete every dead-lettered job matching (admin).")
    @domain
    async def delete_dead_letters(self, info: Info[Context, None],
                                  filter: DlqFilterInput) -> BulkResult:
        c = ctx(info)
        c.require(A, "bulk-delete the dead-letter queue")
        ids = await dlq.delete_dead_letters(c.deps, filter.to_core())
        return BulkResult(count=len(ids), ids=[strawberry.ID(str(i)) for i in ids])

    @strawberry.mutation
    @domain
    async def pause_queue(self, info: Info[Context, None], queue: str) -> QueueControls:
        c = ctx(info)
        c.require(A, "pause queues")
        queues.check_queue_name(queue, "queue")
        return QueueControls.of(await queues.pause_queue(c.deps, queue))

    @strawberry.mutation(description="Cancel every pending and scheduled job of the queue "
                                      "(admin); returns how many. Running jobs finish.")
    @domain
    async def purge_queue(self, info: Info[Context, None], queue: str) -> int:
        c = ctx(info)
        c.require(A, "purge queues")
        queues.check_queue_name(queue, "queue")
        return await jobs_core.purge_queue(c.deps, queue)

    @strawberry.mutation
    @domain
    async def resume_queue(self, info: Info[Context, None], queue: str) -> QueueControls:
        c = ctx(info)
        c.require(A, "resume queues")
        queues.check_queue_name(queue, "queue")
        return QueueControls.of(await queues.resume_queue(c.deps, queue))

    @strawberry.mutation(description="limit null removes the rate limit.")
    @domain
    async def set_rate_limit(self, info: Info[Context, None], queue: str, limit: int | None,
                             window_ms: int = 1000) -> QueueControls:
        c = ctx(info)
        c.require(A, "set rate limits")
        if limit is None:
            queues.check_queue_name(queue, "queue")
            return QueueControls.of(await rate_limits.clear_rate_limit(c.deps, queue))
        return QueueControls.of(await rate_limits.set_rate_limit(c.deps, queue, limit=limit,
                                                                 window_ms=window_ms))

    @strawberry.mutation(description="maxInFlight null removes the cap.")
    @domain
    async def set_concurrency(self, info: Info[Context, None], queue: str,
                              max_in_flight: int | None) -> QueueControls:
        c = ctx(info)
        c.require(A, "set concurrency caps")
        queues.check_queue_name(queue, "queue")
        return QueueControls.of(await queues.set_queue_limits(c.deps, queue,
                                                              max_in_flight=max_in_flight))

    @strawberry.mutation
    @domain
    async def create_schedule(self, info: Info[Context, None], input: ScheduleInput) -> Schedule:
        c = ctx(info)
        c.require(D, "create schedules")
        spec = ScheduleIn.model_validate(input.given()).to_spec()
        return Schedule.of(await schedules_core.create_schedule(c.deps, spec))

    @strawberry.mutation
    @domain
    async def update_schedule(self, info: Info[Context, None], id: strawberry.ID,
                              input: ScheduleInput) -> Schedule:
        c = ctx(info)
        c.require(D, "update schedules")
        changes = SchedulePatchIn.model_validate(input.given()).model_dump(exclude_unset=True)
        return Schedule.of(await schedules_core.update_schedule(c.deps, parse_id(id, "id"),
                                                                changes))

    @strawberry.mutation
    @domain
    async def delete_schedule(self, info: Info[Context, None], id: strawberry.ID) -> bool:
        c = ctx(info)
        c.require(D, "delete schedules")
        await schedules_core.delete_schedule(c.deps, parse_id(id, "id"))
        return True

    @strawberry.mutation
    @domain
    async def create_batch(self, info: Info[Context, None], name: str,
                           jobs: list[SubmitJobInput],
                           on_complete: SubmitJobInput | None = None) -> BatchCreated:
        c = ctx(info)
        c.require(D, "create batches")
        now = c.deps.clock.now_ms()
        specs = [spec_of(x, now, f"jobs[{i}].", c.deps.settings) for i, x in enumerate(jobs)]
        oc = spec_of(on_complete, now, "onComplete.", c.deps.settings) if on_complete else None
        b = await batches_core.create_batch(c.deps, name, specs, oc)
        return BatchCreated(id=strawberry.ID(str(b.id)), total=b.total,
                            jobs=[Submitted.of(r) for r in b.jobs],
                            on_complete_job_id=strawberry.ID(str(b.on_complete_job_id))
                            if b.on_complete_job_id else None)
