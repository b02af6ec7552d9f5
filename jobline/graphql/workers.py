"""GraphQL worker management: worker groups, worker logs and the admin actions, over the same
core functions as ``/api/v1/workers`` and ``/api/v1/worker-groups``
(:mod:`jobline.shared.fleet.actions`), audited with the calling key."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from jobline.shared.fleet import actions, control, groups
from jobline.shared.platform.errors import ValidationFailed
from jobline.shared.security.masking import mask_text

from .common import A, ctx
from .context import Context
from .errors import domain
from .types import Worker


async def _command(info: Info[Context, None], id: str, action: str) -> Worker:
    c = ctx(info)
    return Worker.of(await actions.command(c.deps, id, action, _actor(c)))


def _actor(c: Any) -> actions.Actor:
    p = c.require(A, "manage workers")
    return actions.Actor(str(p.key_id), p.name)


@strawberry.type(description="A worker group's count, utilization and crashes in one minute.")
class WorkerGroupPoint:
    minute: str
    desired: int
    actual: int
    busy: int
    capacity: int
    crashes: int
    utilization: float | None


@strawberry.type(description="A worker that ended without a clean stop.")
class WorkerCrash:
    worker_id: str
    at: str
    exit_code: int | None
    detail: str | None


@strawberry.type(description="A worker group: the desired process count its supervisor (or "
                              "KEDA) converges to, the live count, and its autoscaling.")
class WorkerGroup:
    name: str
    desired: int | None
    actual: int
    draining: int
    busy: int
    capacity: int
    utilization: float | None
    autoscale: JSON | None
    scaled_at: str | None
    scaled_reason: str | None
    crashes_last_hour: int

    @staticmethod
    def of(g: dict[str, Any]) -> WorkerGroup:
        return WorkerGroup(name=g["name"], desired=g["desired"], actual=g["actual"],
                           draining=g["draining"], busy=g["busy"], capacity=g["capacity"],
                           utilization=g["utilization"], autoscale=g["autoscale"],
                           scaled_at=g["scaledAt"], scaled_reason=g["scaledReason"],
                           crashes_last_hour=g["crashesLastHour"])

    @strawberry.field(description="Per minute, oldest first, over the last `minutes`.")
    @domain
    async def history(self, info: Info[Context, None], minutes: int = 60
                      ) -> list[WorkerGroupPoint]:
        c = ctx(info)
        c.require(A, "read worker groups")
        if not 1 <= minutes <= 10080:
            raise ValidationFailed("minutes", "1-10080")
        rows = await groups.history(c.deps, self.name, c.deps.clock.now_ms() - minutes * 60_000)
        return [WorkerGroupPoint(**r) for r in rows]

    @strawberry.field(description="The group's latest crashes, newest first.")
    @domain
    async def crashes(self, info: Info[Context, None], limit: int = 20) -> list[WorkerCrash]:
        c = ctx(info)
        c.require(A, "read worker groups")
        rows = await groups.recent_crashes(c.deps, self.name, max(1, min(limit, 100)))
        return [WorkerCrash(worker_id=r["workerId"], at=r["at"], exit_code=r["exitCode"],
                            detail=r["detail"]) for r in rows]


@strawberry.input(description="Autoscaling of a worker group (docs/workers.md).")
class AutoscaleInput:
    min: int = 0
    max: int
    target_backlog_per_worker: int | None = None
    latency_sla_ms: int | None = None
    up_cooldown_s: float | None = None
    down_cooldown_s: float | None = None
    hysteresis: float | None = None
    queues: list[str] | None = None

    def to_settings(self) -> dict[str, Any]:
        raw = {"min": self.min, "max": self.max,
               "targetBacklogPerWorker": self.target_backlog_per_worker,
               "latencySlaMs": self.latency_sla_ms, "upCooldownS": self.up_cooldown_s,
               "downCooldownS": self.down_cooldown_s, "hysteresis": self.hysteresis,
               "queues": self.queues}
        return {k: v for k, v in raw.items() if v is not None}


@strawberry.type
class WorkerQueries:
    @strawberry.field(description="Worker groups with desired and actual counts (admin).")
    @domain
    async def worker_groups(self, info: Info[Context, None]) -> list[WorkerGroup]:
        c = ctx(info)
        c.require(A, "read worker groups")
        return [WorkerGroup.of(g) for g in await c.read(actions.group_views)]

    @strawberry.field(description="A worker's last log lines, oldest first, secrets masked.")
    @domain
    async def worker_logs(self, info: Info[Context, None], id: str,
                          lines: int = 100) -> list[str]:
        c = ctx(info)
        c.require(A, "read worker logs")
        if not 1 <= lines <= control.LOG_LINES:
            raise ValidationFailed("lines", f"1-{control.LOG_LINES}")
        keys = c.deps.settings.mask_keys
        return [mask_text(x, keys) or "" for x in await control.read_logs(c.deps, id, lines)]


@strawberry.type
class WorkerMutations:
    @strawberry.mutation(description="Scale a worker group to `desired`, or by `step` "
                                     "(+1 / -1); admin, audited.")
    @domain
    async def scale_worker_group(self, info: Info[Context, None], name: str,
                                 desired: int | None = None, step: int | None = None
                                 ) -> WorkerGroup:
        c = ctx(info)
        actor = _actor(c)
        if (desired is None) == (step is None):
            raise ValidationFailed("desired", "give exactly one of desired, step")
        return WorkerGroup.of(await actions.scale(c.deps, name, actor, desired=desired,
                                                  step=step or 0))

    @strawberry.mutation(description="Set a worker group's autoscaling (null: off); admin, "
                                     "audited.")
    @domain
    async def set_worker_group_autoscale(self, info: Info[Context, None], name: str,
                                         autoscale: AutoscaleInput | None) -> WorkerGroup:
        c = ctx(info)
        actor = _actor(c)
        settings = autoscale.to_settings() if autoscale is not None else None
        return WorkerGroup.of(await actions.configure_autoscale(c.deps, name, settings, actor))

    @strawberry.mutation(description="Warm restart: the worker finishes or releases its jobs "
                                     "and exits; its supervisor starts a replacement.")
    @domain
    async def restart_worker(self, info: Info[Context, None], id: str) -> Worker:
        return await _command(info, id, "restart")

    @strawberry.mutation(description="Stop claiming new jobs (in-flight jobs finish).")
    @domain
    async def quiet_worker(self, info: Info[Context, None], id: str) -> Worker:
        return await _command(info, id, "quiet")

    @strawberry.mutation(description="Claim again after quiet.")
    @domain
    async def resume_worker(self, info: Info[Context, None], id: str) -> Worker:
        return await _command(info, id, "resume")

    @strawberry.mutation(description="Warm stop; a supervised worker's group shrinks by one.")
    @domain
    async def stop_worker(self, info: Info[Context, None], id: str) -> Worker:
        return await _command(info, id, "stop")
