"""Worker groups with real processes (issue 19): a supervisor scaled 2 -> 4 -> 1 under load
loses nothing and runs nothing twice beyond at-least-once (the chaos checker); a busy worker
restarted warm; a crash loop shows as crashes and backs off; an autoscaled group scales up on a
backlog spike and back down to its minimum when idle."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chaos.checker import assert_total_queue, check
from chaos.conftest import LEASE_MS, SCALE, SWEEP_MS, ChaosProcs
from chaos.test_chaos import counts, drained, submit
from jobline.shared.fleet import actions, groups
from jobline.shared.platform.connections import Deps
from jobline.testing import wait_until

pytestmark = pytest.mark.slow

ADMIN = actions.Actor("test", "test")


async def live(deps: Deps, group: str, *, draining: bool = False) -> list[dict[str, Any]]:
    return [w for w in await actions.workers(deps) if w["group"] == group
            and (draining or w["state"] != "draining")]


async def wait_live(deps: Deps, group: str, n: int, timeout: float = 90) -> list[str]:
    """Wait until exactly ``n`` workers of ``group`` are registered (draining ones included:
    a scale-down is done when they are gone)."""
    async def exactly() -> list[str] | None:
        ws = await live(deps, group, draining=True)
        return [w["id"] for w in ws] if len(ws) == n else None

    ids = await wait_until(exactly, timeout=timeout, message=f"{n} live workers in {group}")
    assert ids is not None
    return ids


async def test_scale_2_to_4_to_1_under_load_loses_nothing(deps: Deps,
                                                          procs: ChaosProcs) -> None:
    acked = await submit(deps, "s", 150 * SCALE, ms=40)
    procs.start("scheduler")
    procs.worker("--group", "scaled", "--processes", "2", "--concurrency", "4")
    first = set(await wait_live(deps, "scaled", 2))
    assert (await groups.get_group(deps, "scaled")).desired == 2  # type: ignore[union-attr]

    await actions.scale(deps, "scaled", ADMIN, desired=4)
    four = set(await wait_live(deps, "scaled", 4))
    assert first <= four  # scaling up keeps the running workers
    acked += await submit(deps, "t", 100 * SCALE, ms=40)

    async def some_by_new() -> bool:
        n = await deps.pool.fetchval(
            "SELECT count(*) FROM job_attempts WHERE worker_id = ANY($1::text[])",
            list(four - first))
        return bool(n)

    await wait_until(some_by_new, timeout=60, message="the new workers claim jobs")
    await actions.scale(deps, "scaled", ADMIN, desired=1)
    [last] = await wait_live(deps, "scaled", 1)
    assert last in four
    await drained(deps, timeout=120)
    v = await check(deps, procs.home, acked)
    assert_total_queue(v, LEASE_MS, SWEEP_MS)
    # the scale-downs were warm stops: no worker lost a lease
    lost = await deps.pool.fetchval(
        "SELECT count(*) FROM job_attempts WHERE outcome = 'lease_expired'")
    assert lost == 0
    assert await groups.crashes_since(deps, 0) == {}


async def test_restart_a_busy_worker_is_warm_and_replaced(deps: Deps,
                                                          procs: ChaosProcs) -> None:
    acked = await submit(deps, "r", 2, ms=1_500)
    procs.worker("--group", "busy", "--processes", "1", "--concurrency", "2")
    [old] = await wait_live(deps, "busy", 1)

    async def busy() -> bool:
        return (await counts(deps)).get("processing", 0) == 2

    await wait_until(busy, timeout=60, message="both jobs running")
    w = await actions.command(deps, old, "restart", ADMIN)
    assert w["command"] == "restart"

    async def replaced() -> str | None:
        ids = [x["id"] for x in await live(deps, "busy", draining=True)]
        return ids[0] if len(ids) == 1 and ids[0] != old else None

    new = await wait_until(replaced, timeout=90, message="a replacement worker")
    assert new is not None
    await drained(deps)
    v = await check(deps, procs.home, acked)
    assert_total_queue(v, LEASE_MS, SWEEP_MS)
    # warm: the restarted worker finished its two jobs itself
    by = await deps.pool.fetch("SELECT DISTINCT worker_id FROM job_attempts")
    assert [r["worker_id"] for r in by] == [old]
    assert (await groups.get_group(deps, "busy")).desired == 1  # type: ignore[union-attr]
    assert await groups.crashes_since(deps, 0) == {}


async def test_stop_shrinks_the_group_and_is_not_a_crash(deps: Deps,
                                                         procs: ChaosProcs) -> None:
    procs.worker("--group", "stopme", "--processes", "2", "--concurrency", "1")
    ids = await wait_live(deps, "stopme", 2)
    await actions.command(deps, ids[0], "stop", ADMIN)

    async def shrunk() -> bool:
        g = await groups.get_group(deps, "stopme")
        return g is not None and g.desired == 1

    # the supervisor lowers the count when the stopped worker exits (not a replacement)
    await wait_until(shrunk, timeout=60, message="desired lowered to 1")
    assert await wait_live(deps, "stopme", 1) == [ids[1]]
    assert await groups.crashes_since(deps, 0) == {}


async def test_a_crash_loop_shows_as_crashes_and_backs_off(deps: Deps,
                                                           procs: ChaosProcs) -> None:
    # a worker that cannot start: its app does not import
    sup = procs.start("worker", "--app", "no_such_module_19", "--group", "crashy",
                      "--processes", "1")

    async def crashes() -> int | None:
        n = (await groups.crashes_since(deps, 0)).get("crashy", 0)
        return n if n >= 4 else None

    await wait_until(crashes, timeout=90, message="four crashes recorded")
    delays = [float(x) for x in re.findall(r"restarting in ([0-9.]+)s", procs.logs(sup))]
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8], delays
    rows = await groups.recent_crashes(deps, "crashy")
    assert all(r["exitCode"] not in (0, None) for r in rows)
    view = await actions.group_view(deps, "crashy")
    assert view["crashesLastHour"] >= 4 and view["actual"] == 0


async def test_autoscaling_scales_up_on_a_spike_and_down_to_min_when_idle(
        deps: Deps, procs: ChaosProcs) -> None:
    await actions.configure_autoscale(deps, "auto", {
        "min": 1, "max": 4, "targetBacklogPerWorker": 25, "upCooldownS": 0,
        "downCooldownS": 1, "hysteresis": 0.2}, ADMIN)
    procs.start("scheduler", JOBLINE_FLEET_STEP_MS="200")
    procs.worker("--group", "auto", "--processes", "1", "--concurrency", "2")
    await wait_live(deps, "auto", 1)
    # ~45 s of work for the one worker: the new ones start (seconds each on 2 busy cores)
    # well before it could drain the spike alone
    acked = await submit(deps, "spike", 300 * SCALE, ms=300)

    async def scaled_up() -> int | None:
        g = await groups.get_group(deps, "auto")
        assert g is not None
        return g.desired if g.desired >= 3 else None

    await wait_until(scaled_up, timeout=60, message="the autoscaler scales up")

    async def up_live() -> bool:
        # the fleet step's history keeps the peak live count of each minute
        return max((h["actual"] for h in await groups.history(deps, "auto", 0)),
                   default=0) >= 3

    await wait_until(up_live, timeout=120, message="the supervisor starts the workers")
    await drained(deps, timeout=120)

    async def back_to_min() -> bool:
        g = await groups.get_group(deps, "auto")
        return g is not None and g.desired == 1

    await wait_until(back_to_min, timeout=90, message="idle: scaled down to min")
    await wait_live(deps, "auto", 1)
    v = await check(deps, procs.home, acked)
    assert_total_queue(v, LEASE_MS, SWEEP_MS)
    reasons = [r["scaled_reason"] for r in await deps.pool.fetch(
        "SELECT data->>'reason' AS scaled_reason FROM job_events WHERE type = 'workers.scaled'"
        " AND data->>'keyName' = 'autoscaler'")]
    assert any(r.startswith("up") for r in reasons) and any(r.startswith("down") for r in reasons)
