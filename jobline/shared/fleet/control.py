"""Per-worker control in Redis: commands (quiet, resume, stop, restart), the last log lines,
and the clean-stop marks that tell a crash from a stop. The keys are spelled with the rest of
the worker registry's, in :mod:`jobline.shared.observe.workers`:

- ``commands_key`` (hash): worker id -> ``quiet`` | ``stop`` | ``restart``. A
  worker reads its entry with every heartbeat and when nudged on its cancel channel (message
  :data:`NUDGE`); a remote worker gets it in its heartbeat response. ``resume`` deletes a
  ``quiet``. The entry goes when the worker deregisters.
- ``logs_key`` (list): the worker's last :data:`LOG_LINES` log lines, masked
  by the worker before they leave it (and again when read), expiring an hour after its last push.
- ``stopped_key``: set by a clean stop (expires after a day); a worker that
  vanishes without it counts as a crash.
- ``seen_key`` (hash): worker id -> group, every worker the scheduler's sweep has
  seen alive and not yet accounted for (stopped cleanly, or recorded as a crash).

Best-effort like the registry: no job state lives here. A lost command is re-read at the next
heartbeat; a lost nudge only delays it by one heartbeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from jobline.shared.core import cancellation
from jobline.shared.core.jobs import translate_errors
from jobline.shared.observe.workers import commands_key, logs_key, seen_key, stopped_key
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.redis_client import get_many

Command = Literal["quiet", "stop", "restart"]
COMMANDS: tuple[str, ...] = ("quiet", "resume", "stop", "restart")
#: Published on the worker's cancel channel to say "read your command now" (a job id never
#: equals it, so the cancel listener tells them apart).
NUDGE = "jobline:command"
LOG_LINES = 500
LOG_TTL_S = 3600
STOPPED_TTL_S = 86_400


def _s(v: bytes | str | None) -> str | None:
    return v.decode() if isinstance(v, bytes) else v


@translate_errors
async def send(deps: Deps, worker_id: str, action: str) -> None:
    """Record ``action`` for ``worker_id`` and nudge it (``resume`` clears a ``quiet``)."""
    d = deps.dispatch
    if action == "resume":
        await d.r.hdel(commands_key(d.prefix), worker_id)
    else:
        await d.r.hset(commands_key(d.prefix), worker_id, action)
    await d.r.publish(cancellation.channel(d.prefix, worker_id), NUDGE)


@translate_errors
async def command_for(deps: Deps, worker_id: str) -> str | None:
    d = deps.dispatch
    return _s(await d.r.hget(commands_key(d.prefix), worker_id))


@translate_errors
async def all_commands(deps: Deps) -> dict[str, str]:
    d = deps.dispatch
    raw = await d.r.hgetall(commands_key(d.prefix))
    return {str(_s(k)): str(_s(v)) for k, v in raw.items()}


@translate_errors
async def push_logs(deps: Deps, worker_id: str, lines: Sequence[str]) -> None:
    if not lines:
        return
    d = deps.dispatch
    key = logs_key(d.prefix, worker_id)
    async with d.r.pipeline(transaction=False) as p:
        p.rpush(key, *lines)
        p.ltrim(key, -LOG_LINES, -1)
        p.expire(key, LOG_TTL_S)
        await p.execute()


@translate_errors
async def read_logs(deps: Deps, worker_id: str, n: int) -> list[str]:
    d = deps.dispatch
    return [str(_s(v)) for v in await d.r.lrange(logs_key(d.prefix, worker_id), -n, -1)]


@translate_errors
async def mark_stopped(deps: Deps, worker_id: str) -> None:
    """A clean stop: the worker is not a crash, and its command entry is done with."""
    d = deps.dispatch
    async with d.r.pipeline(transaction=False) as p:
        p.set(stopped_key(d.prefix, worker_id), "1", ex=STOPPED_TTL_S)
        p.hdel(commands_key(d.prefix), worker_id)
        await p.execute()


@translate_errors
async def note_seen(deps: Deps, groups: dict[str, str]) -> None:
    if groups:
        d = deps.dispatch
        await d.r.hset(seen_key(d.prefix), mapping=dict(groups.items()))


@translate_errors
async def vanished(deps: Deps, live: set[str]) -> dict[str, tuple[str, bool]]:
    """Workers seen alive before and gone now: id -> (group, stopped cleanly). They are
    forgotten by this call (each is accounted for once)."""
    d = deps.dispatch
    seen = {str(_s(k)): str(_s(v)) for k, v in (await d.r.hgetall(seen_key(d.prefix))).items()}
    gone = [w for w in seen if w not in live]
    if not gone:
        return {}
    marks = await get_many(d.r, [stopped_key(d.prefix, w) for w in gone])
    await d.r.hdel(seen_key(d.prefix), *gone)
    # a command a dead worker never carried out (it crashed first) is dropped with it
    await d.r.hdel(commands_key(d.prefix), *gone)
    return {w: (seen[w], m is not None) for w, m in zip(gone, marks, strict=True)}
