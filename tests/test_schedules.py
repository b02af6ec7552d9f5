"""Cron schedules against real PostgreSQL + Valkey: FakeClock-driven tick semantics (due runs,
DST, catch-up, overlap, exactly once), REST and client, and two real scheduler processes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobline.api.schedule_schemas import ScheduleListOut, ScheduleOut
from jobline.client import Client
from jobline.shared.core import jobs
from jobline.shared.core.models import Outcome
from jobline.shared.platform.clock import FakeClock, from_dt
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.shared.platform.errors import NotFound, ValidationFailed
from jobline.shared.schedules import recurring as schedules
from jobline.shared.schedules.cron import CronSchedule
from jobline.shared.schedules.recurring import ScheduleSpec, cron_tick
from jobline.testing import wait_until

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, FakeClock's default
MIN = 60_000


@pytest.fixture
async def fdeps(settings: Settings) -> AsyncIterator[Deps]:
    d = await connect(settings, FakeClock())
    yield d
    await d.close()


def clock_of(deps: Deps) -> FakeClock:
    assert isinstance(deps.clock, FakeClock)
    return deps.clock


def every(expr: str = "* * * * *", **kw: Any) -> ScheduleSpec:
    return ScheduleSpec(name=kw.pop("name", "s"), queue=kw.pop("queue", "cron"),
                        job_type=kw.pop("job_type", "report"),
                        payload=kw.pop("payload", {"k": 1}), schedule=expr, **kw)


def ms(iso: str) -> int:
    return from_dt(datetime.fromisoformat(iso))


async def runs(deps: Deps, sid: uuid.UUID) -> list[tuple[int, str]]:
    return [(r.fire_ms, r.outcome) for r in await schedules.schedule_runs(deps, sid)]


async def job_rows(deps: Deps) -> list[Any]:
    return await deps.pool.fetch(
        "SELECT id, queue_name, job_type, payload, status, scheduled_for, idempotency_key "
        "FROM jobs ORDER BY seq")


async def test_a_due_run_is_submitted_once_through_the_submit_path(fdeps: Deps) -> None:
    deps, clock = fdeps, clock_of(fdeps)
    clock.set(T0 + 30_000)
    s = await schedules.create_schedule(deps, every())
    assert s.next_run_ms == T0 + MIN
    assert s.next_runs == [T0 + MIN * i for i in range(1, 6)]
    assert (await cron_tick(deps)).submitted == 0
    clock.set(T0 + MIN)
    rep = await cron_tick(deps)
    assert (rep.submitted, rep.next_fire_ms) == (1, T0 + 2 * MIN)
    assert (await cron_tick(deps)).submitted == 0  # the same fire time never runs twice
    [j] = await job_rows(deps)
    assert (j["queue_name"], j["job_type"], j["payload"], j["status"]) == (
        "cron", "report", {"k": 1}, "pending")
    assert from_dt(j["scheduled_for"]) == T0 + MIN
    assert j["idempotency_key"] == f"jobline:cron:{s.id}:{T0 + MIN}"
    assert (await deps.dispatch.depth(["cron"]))["cron"]["ready"] == 1
    got = await schedules.get_schedule(deps, s.id)
    assert (got.last_run_ms, got.last_job_id, got.next_run_ms) == (T0 + MIN, j["id"], T0 + 2 * MIN)
    clock.set(T0 + 2 * MIN + 40)
    assert (await cron_tick(deps)).submitted == 1
    assert await runs(deps, s.id) == [(T0 + MIN, "submitted"), (T0 + 2 * MIN, "submitted")]


async def test_seconds_field_and_every_fire_time_within_the_grace(fdeps: Deps) -> None:
    deps, clock = fdeps, clock_of(fdeps)
    s = await schedules.create_schedule(deps, every("* * * * * *"))
    assert s.next_runs == [T0 + 1000 * i for i in range(1, 6)]
    clock.advance(3_500)  # a stalled tick: three fire times due, all within the grace
    assert (await cron_tick(deps)).submitted == 3
    assert [f for f, _ in await runs(deps, s.id)] == [T0 + 1000, T0 + 2000, T0 + 3000]


async def _fire_times(deps: Deps, spec: ScheduleSpec, start: str, until: str) -> list[str]:
    """Create ``spec`` at ``start`` and drive the clock from fire time to fire time, ticking at
    each, until ``until``; returns the UTC fire times handled (all on time). Deletes it after."""
    clock = clock_of(deps)
    clock.set(ms(start))
    sid = (await schedules.create_schedule(deps, spec)).id
    while True:
        nxt = (await schedules.get_schedule(deps, sid)).next_run_ms
        assert nxt is not None
        if nxt > ms(until):
            break
        clock.set(nxt)
        await cron_tick(deps)
    handled = await runs(deps, sid)
    assert {o for _, o in handled} == {"submitted"}
    await schedules.delete_schedule(deps, sid)
    return [datetime.fromtimestamp(f / 1000, UTC).strftime("%m-%d %H:%M") for f, _ in handled]


async def test_dst_fall_back_fixed_time_fires_once_wildcard_hour_follows_real_time(
        fdeps: Deps) -> None:
    ny = "America/New_York"
    start, end = "2026-10-31T12:00:00+00:00", "2026-11-02T12:00:00+00:00"
    # 01:30 exists twice on Nov 1 (EDT, then EST): a fixed-time schedule fires once
    assert await _fire_times(fdeps, every("30 1 * * *", timezone=ny), start, end) == [
        "11-01 05:30", "11-02 06:30"]
    assert await _fire_times(fdeps, every("*/30 1 * * *", timezone=ny), start, end) == [
        "11-01 05:00", "11-01 05:30", "11-02 06:00", "11-02 06:30"]
    # an hourly schedule follows real time: 25 runs in the 25-hour local day of Nov 1
    hours = await _fire_times(fdeps, every("0 * * * *", timezone=ny), start, end)
    nov1 = [h for h in hours if "11-01 04:00" <= h < "11-02 05:00"]
    assert len(nov1) == 25 and {"11-01 05:00", "11-01 06:00"} <= set(nov1)


async def test_dst_spring_forward_skipped_time_fires_once_an_hour_later(fdeps: Deps) -> None:
    # 02:30 does not exist on Mar 8 (02:00 EST -> 03:00 EDT): it fires at 03:30 EDT = 07:30Z
    assert await _fire_times(fdeps, every("30 2 * * *", timezone="America/New_York"),
                             "2026-03-07T12:00:00+00:00", "2026-03-10T12:00:00+00:00") == [
        "03-08 07:30", "03-09 06:30", "03-10 06:30"]


@pytest.mark.parametrize(("policy", "jobs_after_outage"), [("run_once", 1), ("skip", 0)])
async def test_catch_up_after_downtime(fdeps: Deps, policy: str, jobs_after_outage: int,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    deps, clock = fdeps, clock_of(fdeps)
    s = await schedules.create_schedule(deps, every(catch_up=policy))
    clock.set(T0 + 10 * MIN + 30_000)  # down for ten fire times, all older than the grace
    rep = await cron_tick(deps)
    assert (rep.submitted, rep.missed, rep.next_fire_ms) == (jobs_after_outage, 1, T0 + 11 * MIN)
    expected = [(T0 + MIN, "caught_up")] if policy == "run_once" else []
    assert await runs(deps, s.id) == expected
    if policy == "run_once":  # the catch-up run is due now, not back at the missed time
        [j] = await job_rows(deps)
        assert from_dt(j["scheduled_for"]) == clock.now_ms()
    clock.set(T0 + 11 * MIN)  # back to normal
    assert (await cron_tick(deps)).submitted == 1
    # a seconds schedule down for a day is skipped over in one step, not 86,400 iterations
    sec = await schedules.create_schedule(deps, every("* * * * * *", catch_up=policy))
    clock.advance(86_400_000)
    computed: list[int] = []
    next_after = CronSchedule.next_after

    def counted(self: CronSchedule, after_ms: int) -> int | None:
        computed.append(after_ms)
        return next_after(self, after_ms)

    monkeypatch.setattr(CronSchedule, "next_after", counted)
    await cron_tick(deps)
    # one step over the outage, then one per fire time inside the misfire grace: a handful,
    # not one per missed second of the day
    assert len(computed) < 100, len(computed)
    assert (await schedules.get_schedule(deps, sec.id)).next_run_ms == clock.now_ms() + 1000


@pytest.mark.parametrize("policy", ["skip", "allow"])
async def test_overlap_policy(fdeps: Deps, policy: str) -> None:
    deps, clock = fdeps, clock_of(fdeps)
    s = await schedules.create_schedule(deps, every(overlap_policy=policy))
    clock.set(T0 + MIN)
    await cron_tick(deps)
    clock.set(T0 + 2 * MIN)  # the first run has not even started
    await cron_tick(deps)
    second = "skipped_overlap" if policy == "skip" else "submitted"
    assert [o for _, o in await runs(deps, s.id)] == ["submitted", second]
    claimed = await jobs.claim(deps, "w", ["cron"], 10)
    await jobs.complete(deps, [Outcome(c.id, c.token, ok=True) for c in claimed])
    clock.set(T0 + 3 * MIN)  # previous run finished: runs again
    await cron_tick(deps)
    assert [o for _, o in await runs(deps, s.id)][-1] == "submitted"
    assert len(await job_rows(deps)) == (2 if policy == "skip" else 3)


async def test_concurrent_ticks_create_each_run_exactly_once(fdeps: Deps,
                                                            settings: Settings) -> None:
    deps, clock = fdeps, clock_of(fdeps)
    others = [await connect(settings, clock) for _ in range(3)]
    try:
        ids = [(await schedules.create_schedule(deps, every("* * * * * *", name=f"s{i}"))).id
               for i in range(5)]
        for _ in range(20):
            clock.advance(1000)
            await asyncio.gather(*(cron_tick(d) for d in [deps, *others] for _ in range(2)))
    finally:
        for d in others:
            await d.close()
    rows = await job_rows(deps)
    assert len(rows) == 5 * 20
    assert len({r["idempotency_key"] for r in rows}) == 100
    for sid in ids:
        assert [f for f, _ in await runs(deps, sid)] == [T0 + 1000 * i for i in range(1, 21)]


async def test_a_tick_replayed_after_a_crash_reuses_the_job(fdeps: Deps) -> None:
    deps, clock = fdeps, clock_of(fdeps)
    s = await schedules.create_schedule(deps, every())
    clock.set(T0 + MIN)
    await cron_tick(deps)
    # the state a crash leaves between the job's commit and the schedule's advance
    await deps.pool.execute("UPDATE schedules SET next_run_at = $1", datetime.fromtimestamp(
        (T0 + MIN) / 1000, UTC))
    await deps.pool.execute("DELETE FROM schedule_runs")
    clock.set(T0 + MIN + 200)
    rep = await cron_tick(deps)
    assert rep.submitted == 0 and len(await job_rows(deps)) == 1
    assert await runs(deps, s.id) == [(T0 + MIN, "submitted")]


async def test_disabled_schedules_do_not_fire_and_reenabling_starts_from_now(fdeps: Deps) -> None:
    deps, clock = fdeps, clock_of(fdeps)
    s = await schedules.create_schedule(deps, every())
    s = await schedules.update_schedule(deps, s.id, {"enabled": False})
    assert s.next_runs == []
    clock.set(T0 + 5 * MIN + 10)
    assert (await cron_tick(deps)).submitted == 0
    s = await schedules.update_schedule(deps, s.id, {"enabled": True})
    assert s.next_run_ms == T0 + 6 * MIN  # no catch-up for the time it was disabled
    s = await schedules.update_schedule(deps, s.id, {"schedule": "0 9 * * 1-5"})
    # Thursday 2026-01-01, Friday, then Monday
    assert s.next_runs[:3] == [ms("2026-01-01T09:00:00+00:00"), ms("2026-01-02T09:00:00+00:00"),
                               ms("2026-01-05T09:00:00+00:00")]
    await schedules.delete_schedule(deps, s.id)
    with pytest.raises(NotFound):
        await schedules.get_schedule(deps, s.id)


def test_cron_keeps_standard_weekdays_and_the_day_or_rule() -> None:
    # 2026-01-01 is a Thursday
    sun = CronSchedule.parse("0 9 * * 0")
    assert sun.next_after(T0) == ms("2026-01-04T09:00:00+00:00")
    assert CronSchedule.parse("0 9 * * 7").next_after(T0) == sun.next_after(T0)
    assert CronSchedule.parse("0 9 * * mon-fri").next_after(T0) == ms(
        "2026-01-01T09:00:00+00:00")
    either = CronSchedule.parse("0 9 13 * 5")  # the 13th or any Friday
    assert either.next_runs(T0, 3) == [ms("2026-01-02T09:00:00+00:00"),
                                       ms("2026-01-09T09:00:00+00:00"),
                                       ms("2026-01-13T09:00:00+00:00")]


@pytest.mark.parametrize(("expr", "tz", "field", "reason"), [
    ("* * *", "UTC", "schedule", "expected 5 fields"),
    ("61 * * * *", "UTC", "schedule", "higher than the maximum"),
    ("* * * * 9", "UTC", "schedule", "day-of-week"),
    ("0 0 30 2 *", "UTC", "schedule", "never fires"),
    ("* * * * *", "Mars/Olympus", "timezone", "unknown IANA timezone"),
])
async def test_invalid_expressions_are_refused_with_the_reason(
        fdeps: Deps, expr: str, tz: str, field: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        await schedules.create_schedule(fdeps, every(expr, timezone=tz))
    assert e.value.field == field and reason in e.value.message
    assert await fdeps.pool.fetchval("SELECT count(*) FROM schedules") == 0


async def test_changes_wake_the_cron_loop(fdeps: Deps) -> None:
    deps = fdeps
    key = deps.dispatch.cron_wake
    s = await schedules.create_schedule(deps, every())
    assert await deps.redis.llen(key) == 1  # type: ignore[misc]
    await deps.redis.delete(key)
    await schedules.update_schedule(deps, s.id, {"name": "renamed"})
    assert await deps.redis.llen(key) == 1  # type: ignore[misc]


async def test_rest_crud(http: httpx.AsyncClient, deps: Deps) -> None:
    body = {"name": "Daily User Report", "queue": "reports", "jobType": "generate_user_report",
            "payload": {"x": 1}, "schedule": "0 9 * * *"}
    resp = await http.post("/api/v1/scheduled-jobs", json=body)
    assert resp.status_code == 201, resp.text
    s = ScheduleOut.model_validate(resp.json())
    assert (s.timezone, s.enabled, s.overlap_policy, s.catch_up) == (
        "UTC", True, "allow", "run_once")
    assert len(s.next_runs) == 5 and all(t.hour == 9 and t.minute == 0 for t in s.next_runs)
    listing = ScheduleListOut.model_validate((await http.get("/api/v1/scheduled-jobs")).json())
    assert [x.id for x in listing.scheduled_jobs] == [s.id]
    one = await http.get(f"/api/v1/scheduled-jobs/{s.id}")
    assert one.status_code == 200 and one.json()["name"] == "Daily User Report"
    resp = await http.patch(f"/api/v1/scheduled-jobs/{s.id}",
                            json={"schedule": "*/5 * * * * *", "timezone": "Europe/Berlin",
                                  "overlapPolicy": "skip", "maxAttempts": 2})
    assert resp.status_code == 200, resp.text
    p = ScheduleOut.model_validate(resp.json())
    assert (p.schedule, p.timezone, p.overlap_policy, p.max_attempts) == (
        "*/5 * * * * *", "Europe/Berlin", "skip", 2)
    assert all(t.second % 5 == 0 for t in p.next_runs)
    assert (await http.patch(f"/api/v1/scheduled-jobs/{s.id}",
                             json={"enabled": False})).json()["nextRuns"] == []
    assert (await http.delete(f"/api/v1/scheduled-jobs/{s.id}")).status_code == 204
    assert (await http.get(f"/api/v1/scheduled-jobs/{s.id}")).status_code == 404
    assert (await http.delete(f"/api/v1/scheduled-jobs/{s.id}")).status_code == 404
    assert (await http.get("/api/v1/scheduled-jobs/not-a-uuid")).status_code == 404


@pytest.mark.parametrize(("body", "status", "field", "reason"), [
    ({"schedule": "0 25 * * *"}, 422, "schedule", "higher than the maximum"),
    ({"schedule": "every day"}, 422, "schedule", ""),
    ({"timezone": "Nowhere/City"}, 422, "timezone", "unknown IANA timezone"),
    ({"overlapPolicy": "queue"}, 422, "overlapPolicy", ""),
    ({"catchUp": "all"}, 422, "catchUp", ""),
    ({"jobType": "9bad"}, 422, "jobType", ""),
    ({"priority": 11}, 422, "priority", ""),
    ({"cron": "* * * * *"}, 422, "cron", ""),
])
async def test_rest_bad_input_is_422_naming_the_field(
        http: httpx.AsyncClient, deps: Deps, body: dict[str, Any], status: int, field: str,
        reason: str) -> None:
    full = {"name": "n", "jobType": "t", "schedule": "* * * * *", **body}
    resp = await http.post("/api/v1/scheduled-jobs", json=full)
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["field"] == field and reason in err["message"]
    assert await deps.pool.fetchval("SELECT count(*) FROM schedules") == 0


async def test_rest_patch_refuses_bad_changes_and_keeps_the_row(http: httpx.AsyncClient,
                                                               deps: Deps) -> None:
    s = (await http.post("/api/v1/scheduled-jobs",
                         json={"name": "n", "jobType": "t", "schedule": "* * * * *"})).json()
    for change, field in (({"enabled": None}, "enabled"), ({"schedule": "* *"}, "schedule"),
                          ({"timezone": "X/Y"}, "timezone")):
        resp = await http.patch(f"/api/v1/scheduled-jobs/{s['id']}", json=change)
        assert resp.status_code == 422 and resp.json()["error"]["field"] == field
    after = (await http.get(f"/api/v1/scheduled-jobs/{s['id']}")).json()
    assert (after["schedule"], after["timezone"], after["enabled"]) == ("* * * * *", "UTC", True)


async def test_client_schedules(settings: Settings) -> None:
    async with Client.connect(settings) as c:
        s = await c.create_schedule("nightly", "cleanup", "0 3 * * *", {"days": 30},
                                    timezone="Asia/Tokyo", catch_up="skip")
        assert s.spec.queue == "default" and len(s.next_runs) == 5
        assert all(datetime.fromtimestamp(t / 1000, UTC).hour == 18 for t in s.next_runs)
        assert [x.id for x in await c.schedules()] == [s.id]
        s2 = await c.update_schedule(s.id, overlap_policy="skip")
        assert s2.spec.overlap_policy == "skip"
        assert (await c.get_schedule(str(s.id))).spec.overlap_policy == "skip"
        with pytest.raises(ValidationFailed) as e:
            await c.update_schedule(s.id, cron="* * * * *")
        assert e.value.field == "cron"
        await c.delete_schedule(s.id)
        assert await c.schedules() == []


@pytest.mark.slow
async def test_two_scheduler_processes_fire_each_time_exactly_once(
        deps: Deps, settings: Settings, tmp_path: Path) -> None:
    from test_processes import Procs

    procs = Procs(settings, tmp_path)
    try:
        procs.start("scheduler")
        procs.start("scheduler")
        s = await schedules.create_schedule(deps, every("* * * * * *"))

        async def enough() -> bool:
            return len(await schedules.schedule_runs(deps, s.id)) >= 5

        await wait_until(enough, timeout=30, message="five fire times handled")
        await schedules.update_schedule(deps, s.id, {"enabled": False})
    finally:
        procs.stop_all()
    handled = await schedules.schedule_runs(deps, s.id)
    fires = [r.fire_ms for r in handled]
    assert all(r.outcome == "submitted" and r.job_id is not None for r in handled)
    # consecutive seconds, none missing, none twice
    assert fires == list(range(fires[0], fires[0] + 1000 * len(fires), 1000))
    rows = await job_rows(deps)
    assert len(rows) == len(fires)
    assert sorted(r["idempotency_key"] for r in rows) == sorted(
        f"jobline:cron:{s.id}:{f}" for f in fires)
    # the first fire time after creation was not missed: the change woke a cron loop
    assert fires[0] <= s.next_runs[0]
