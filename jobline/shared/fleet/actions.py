"""The worker-management actions REST and GraphQL share, each recorded in the audit log (the
job-event outbox) with the API key that made it, and the fleet view they read.

Actions: scale a group to N or by a step, set or clear its autoscaling, and restart, quiet,
resume or stop one worker. None loses a job: scaling down and stopping are warm stops (the
worker finishes or releases what it runs), a quiet worker only stops claiming.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobline.shared.events.outbox import NewEvent, emit
from jobline.shared.fleet import autoscale, control, groups
from jobline.shared.observe.workers import list_workers
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import NotFound, ValidationFailed

#: Audit event types (jobline.shared.events.outbox.OTHER_EVENT_TYPES, docs/events.md).
SCALED = "workers.scaled"
COMMANDED = "workers.command"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an API key (id and name), or a named component (``autoscaler``)."""

    key_id: str | None
    name: str

    def to_json(self) -> dict[str, Any]:
        return {"keyId": self.key_id, "keyName": self.name}


def worker_view(w: dict[str, Any], now_ms: int, commands: dict[str, str]) -> dict[str, Any]:
    """One worker as the API shows it (``GET /api/v1/workers``)."""
    running = int(w.get("running", 0))
    state = w.get("state") or ("busy" if running else "idle")
    return {
        "id": w["id"], "group": w.get("group") or groups.DEFAULT_GROUP,
        "host": w.get("host"), "pid": w.get("pid"), "queues": list(w.get("queues", [])),
        "concurrency": int(w.get("concurrency", 0)), "inFlight": running, "running": running,
        "state": state, "status": "busy" if running else "idle",
        "quiet": bool(w.get("quiet")), "command": commands.get(w["id"]),
        "currentJobs": list(w.get("currentJobs", [])),
        "startedMs": w.get("startedMs"), "lastSeenMs": w.get("lastSeenMs"),
        "uptimeMs": max(0, now_ms - int(w["startedMs"])) if w.get("startedMs") else None,
        "cpuPercent": w.get("cpuPercent"), "rssBytes": w.get("rssBytes"),
        "processed": int(w.get("processed", 0)), "failed": int(w.get("failed", 0)),
        "version": w.get("version"), "remote": bool(w.get("remote")),
    }


async def workers(deps: Deps) -> list[dict[str, Any]]:
    now = deps.clock.now_ms()
    cmds = await control.all_commands(deps)
    return [worker_view(w, now, cmds) for w in await list_workers(deps)]


async def group_views(deps: Deps) -> list[dict[str, Any]]:
    """Every group (stored, or seen only in the registry) with its desired and actual counts."""
    live = await workers(deps)
    stored = {g.name: g for g in await groups.list_groups(deps)}
    crashes = await groups.crashes_since(deps, deps.clock.now_ms() - 3_600_000)
    names = sorted(set(stored) | {w["group"] for w in live})
    out = []
    for name in names:
        members = [w for w in live if w["group"] == name]
        g = stored.get(name)
        capacity = sum(w["concurrency"] for w in members)
        busy = sum(w["inFlight"] for w in members)
        out.append({
            "name": name, "desired": g.desired if g else None, "actual": len(members),
            "draining": sum(1 for w in members if w["state"] == "draining"),
            "busy": busy, "capacity": capacity,
            "utilization": round(busy / capacity, 4) if capacity else None,
            "autoscale": g.autoscale if g else None,
            "scaledAt": g.scaled_at.isoformat() if g and g.scaled_at else None,
            "scaledReason": g.scaled_reason if g else None,
            "updatedBy": g.updated_by if g else None,
            "crashesLastHour": crashes.get(name, 0),
        })
    return out


async def group_view(deps: Deps, name: str) -> dict[str, Any]:
    for g in await group_views(deps):
        if g["name"] == name:
            return g
    raise NotFound(f"worker group {name!r} not found")


async def scale(deps: Deps, name: str, actor: Actor, *, desired: int | None = None,
                step: int = 0) -> dict[str, Any]:
    """Scale ``name`` to ``desired`` (creating the group) or by ``step``."""
    if desired is None and step == 0:
        raise ValidationFailed("desired", "give desired (a count) or step (+1 / -1)")
    before = await groups.get_group(deps, name)
    g = await groups.set_desired(deps, name, desired=desired, step=step, by=actor.name,
                                 create=True)
    await emit(deps, [NewEvent(SCALED, data={
        "group": name, "from": before.desired if before else None, "desired": g.desired,
        **({"step": step} if desired is None else {}), **actor.to_json()})])
    return await group_view(deps, name)


async def configure_autoscale(deps: Deps, name: str, settings: dict[str, Any] | None,
                              actor: Actor) -> dict[str, Any]:
    """Turn autoscaling on with ``settings`` (validated here) or off (None)."""
    groups.check_group_name(name)
    checked = autoscale.check_settings(settings) if settings is not None else None
    g = await groups.set_autoscale(deps, name, checked, by=actor.name)
    await emit(deps, [NewEvent(SCALED, data={"group": name, "autoscale": checked,
                                             "desired": g.desired, **actor.to_json()})])
    return await group_view(deps, name)


async def command(deps: Deps, worker_id: str, action: str, actor: Actor) -> dict[str, Any]:
    """restart / quiet / resume / stop ``worker_id`` (a live worker)."""
    if action not in control.COMMANDS:
        raise ValidationFailed("action", f"one of {', '.join(control.COMMANDS)}")
    live = {w["id"]: w for w in await workers(deps)}
    if worker_id not in live:
        raise NotFound(f"worker {worker_id!r} is not running")
    await control.send(deps, worker_id, action)
    await emit(deps, [NewEvent(COMMANDED, data={"workerId": worker_id, "action": action,
                                                "group": live[worker_id]["group"],
                                                **actor.to_json()})])
    w = dict(live[worker_id])
    w["command"] = None if action == "resume" else action
    return w
