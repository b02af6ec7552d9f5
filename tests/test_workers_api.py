"""Worker management over REST and GraphQL (issue 19): the registry's fields, worker logs with
secrets masked, worker groups (desired counts stored centrally), the actions (quiet, resume,
restart, stop) honoured by direct and remote workers, and the audit log naming the key."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.fleet import groups
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.testing import wait_until
from jobline.worker.registry import Registry
from jobline.worker.remote import RemoteBackend
from jobline.worker.runtime import Worker


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    # heartbeats every 100 ms: commands and logs arrive quickly (no waiting on a 10 s period)
    return settings.with_(lease_ms=600)


def registry() -> Registry:
    reg = Registry()

    @reg.job("noop", queue="wq")
    async def noop(payload: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    @reg.job("hold", queue="wq")
    async def hold(payload: dict[str, Any]) -> None:
        await asyncio.sleep(payload["s"])

    return reg


async def _start(worker: Worker) -> asyncio.Task[Any]:
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.started.wait(), 30)
    return task


async def _listed(admin: httpx.AsyncClient, wid: str) -> dict[str, Any] | None:
    for w in (await admin.get("/api/v1/workers")).json()["workers"]:
        if w["id"] == wid:
            return w  # type: ignore[no-any-return]
    return None


async def _counts(deps: Deps) -> dict[str, int]:
    return {r["status"]: r["n"] for r in await deps.pool.fetch(
        "SELECT status, count(*) AS n FROM jobs GROUP BY status")}


async def test_workers_list_their_group_state_usage_and_version(deps: Deps,
                                                                admin: httpx.AsyncClient) -> None:
    w = Worker(deps, registry(), queues=["wq"], concurrency=2, group="imaging",
               worker_id="h:imaging:a1")
    task = await _start(w)
    try:
        async def listed_with_usage() -> dict[str, Any] | None:
            row = await _listed(admin, "h:imaging:a1")
            return row if row is not None and row["cpuPercent"] is not None else None

        row = await wait_until(listed_with_usage, message="worker listed with CPU%")
        assert row is not None
        assert row["group"] == "imaging" and row["state"] == "idle"
        assert row["concurrency"] == 2 and row["inFlight"] == 0
        assert row["rssBytes"] > 0 and row["version"]
        assert row["quiet"] is False and row["command"] is None
    finally:
        w.request_stop()
        await task


async def test_worker_logs_are_served_with_secrets_masked(deps: Deps,
                                                          admin: httpx.AsyncClient) -> None:
    w = Worker(deps, registry(), queues=["wq"], worker_id="h:default:logs")
    task = await _start(w)
    try:
        logging.getLogger("jobline.test").warning("connecting with password=hunter2 to db")

        async def logged() -> list[str] | None:
            r = await admin.get("/api/v1/workers/h:default:logs/logs", params={"lines": 50})
            lines = r.json()["lines"] if r.status_code == 200 else []
            return lines if any("connecting with" in x for x in lines) else None

        lines = await wait_until(logged, message="log line served")
        assert lines is not None
        text = "\n".join(lines)
        assert "hunter2" not in text and "password=***" in text
        assert (await admin.get("/api/v1/workers/h:default:logs/logs",
                                params={"lines": 0})).status_code == 422
        assert (await admin.get("/api/v1/workers/nobody/logs")).status_code == 404
    finally:
        w.request_stop()
        await task


async def test_quiet_stops_claiming_and_resume_claims_again(deps: Deps,
                                                            admin: httpx.AsyncClient) -> None:
    w = Worker(deps, registry(), queues=["wq"], worker_id="h:default:q")
    task = await _start(w)
    try:
        r = await admin.post("/api/v1/workers/h:default:q/quiet")
        assert r.status_code == 200 and r.json()["command"] == "quiet"

        async def draining() -> bool:
            row = await _listed(admin, "h:default:q")
            return row is not None and row["state"] == "draining" and row["quiet"]

        await wait_until(draining, message="worker quiet")
        [sub] = await jobs.submit_many(deps, [JobSpec(queue="wq", job_type="noop", payload={})])
        # the quiet worker claims nothing: wait for a full heartbeat round, then look
        beats = w.stats.started_ms

        async def two_beats() -> bool:
            row = await _listed(admin, "h:default:q")
            return row is not None and row["lastSeenMs"] > beats + 2 * w.heartbeat_ms

        await wait_until(two_beats, message="two heartbeats while quiet")
        assert await _counts(deps) == {"pending": 1}
        assert (await admin.post("/api/v1/workers/h:default:q/resume")).status_code == 200

        async def done() -> bool:
            return await _counts(deps) == {"completed": 1}

        await wait_until(done, message="job completed after resume")
        assert sub.submitted.id
    finally:
        w.request_stop()
        await task


async def test_stop_and_restart_are_warm_and_lose_nothing(deps: Deps,
                                                         admin: httpx.AsyncClient) -> None:
    for action in ("stop", "restart"):
        await deps.pool.execute("DELETE FROM jobs")
        w = Worker(deps, registry(), queues=["wq"], worker_id=f"h:default:{action}")
        task = await _start(w)
        await jobs.submit_many(deps, [JobSpec(queue="wq", job_type="hold", payload={"s": 0.5})])

        async def running(w: Worker = w) -> bool:
            return len(w.running) == 1

        await wait_until(running, message="job running")
        assert (await admin.post(f"/api/v1/workers/h:default:{action}/{action}")).status_code \
            == 200
        stats = await asyncio.wait_for(task, 60)
        assert stats.stop_requested is (action == "stop")
        # the running job finished within the grace period: completed, not lost
        assert await _counts(deps) == {"completed": 1}
        assert await _listed(admin, f"h:default:{action}") is None
    assert (await admin.post("/api/v1/workers/nobody/stop")).status_code == 404


async def test_a_remote_worker_honours_quiet_and_stop(deps: Deps, admin: httpx.AsyncClient,
                                                      http: httpx.AsyncClient) -> None:
    backend = RemoteBackend("http://jobline", api_key=http.headers["X-Api-Key"],
                            transport=http._transport)
    await backend.open()
    w = Worker(backend, registry(), queues=["wq"], worker_id="remote:r1", group="remote")
    task = await _start(w)
    try:
        async def listed() -> bool:
            return await _listed(admin, "remote:r1") is not None

        await wait_until(listed, message="remote worker listed")
        assert (await admin.post("/api/v1/workers/remote:r1/quiet")).status_code == 200

        async def quiet() -> bool:
            return w.quiet

        await wait_until(quiet, message="remote worker quiet")
        assert (await admin.post("/api/v1/workers/remote:r1/stop")).status_code == 200
        stats = await asyncio.wait_for(task, 60)
        assert stats.stop_requested
    finally:
        if not task.done():
            w.request_stop()
            await task


async def test_groups_store_the_desired_count_and_audit_who_changed_it(
        deps: Deps, admin: httpx.AsyncClient) -> None:
    r = await admin.put("/api/v1/worker-groups/imaging", json={"desired": 3})
    assert r.status_code == 200, r.text
    assert r.json()["desired"] == 3 and r.json()["actual"] == 0
    r = await admin.put("/api/v1/worker-groups/imaging", json={"step": -1})
    assert r.json()["desired"] == 2
    assert (await groups.get_group(deps, "imaging")).desired == 2  # type: ignore[union-attr]
    for bad in ({}, {"desired": 1, "step": 1}, {"desired": -1}, {"step": 0},
                {"autoscale": {"min": 3, "max": 1, "targetBacklogPerWorker": 10}},
                {"autoscale": {"min": 0, "max": 4}}):
        assert (await admin.put("/api/v1/worker-groups/imaging", json=bad)).status_code in \
            (400, 422), bad
    assert (await admin.put("/api/v1/worker-groups/bad name!", json={"desired": 1})
            ).status_code in (404, 422)
    r = await admin.put("/api/v1/worker-groups/imaging", json={"autoscale": {
        "min": 3, "max": 6, "targetBacklogPerWorker": 100}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["autoscale"]["max"] == 6 and body["desired"] == 3  # raised to min
    # with autoscaling on, + past max is clamped
    r = await admin.put("/api/v1/worker-groups/imaging", json={"desired": 50})
    assert r.json()["desired"] == 6
    listed = (await admin.get("/api/v1/worker-groups")).json()["groups"]
    assert [g["name"] for g in listed] == ["imaging"]

    async def audited() -> list[dict[str, Any]] | None:
        ev = (await admin.get("/api/v1/audit", params={"type": "workers.scaled"})).json()
        return ev["events"] if len(ev["events"]) >= 4 else None

    events = await wait_until(audited, message="scaling actions audited")
    assert events is not None
    assert all(e["data"]["keyName"] == "test client" and e["data"]["keyId"] for e in events)


async def test_developer_keys_cannot_manage_workers(deps: Deps, app: Any) -> None:
    from jobline.testing import serve_app

    async for dev in serve_app(app, role="developer"):
        assert (await dev.get("/api/v1/workers")).status_code == 403
        assert (await dev.put("/api/v1/worker-groups/g", json={"desired": 1})).status_code \
            == 403
        assert (await dev.post("/api/v1/workers/x/stop")).status_code == 403


async def test_graphql_manages_groups_and_workers(deps: Deps, admin: httpx.AsyncClient) -> None:
    async def gql(q: str, **v: Any) -> dict[str, Any]:
        r = await admin.post("/graphql", json={"query": q, "variables": v})
        body = r.json()
        assert "errors" not in body, body
        return body["data"]  # type: ignore[no-any-return]

    d = await gql("mutation { scaleWorkerGroup(name: \"g1\", desired: 2) { name desired } }")
    assert d["scaleWorkerGroup"] == {"name": "g1", "desired": 2}
    d = await gql("mutation { scaleWorkerGroup(name: \"g1\", step: 1) { desired } }")
    assert d["scaleWorkerGroup"]["desired"] == 3
    d = await gql("""mutation { setWorkerGroupAutoscale(name: "g1", autoscale: {min: 1, max: 5,
                  latencySlaMs: 2000}) { desired autoscale } }""")
    assert d["setWorkerGroupAutoscale"]["autoscale"]["latencySlaMs"] == 2000
    w = Worker(deps, registry(), queues=["wq"], worker_id="h:g1:gq", group="g1")
    task = await _start(w)
    try:
        d = await gql("{ workers { id group state inFlight version } workerGroups { name "
                      "desired actual history { actual } crashes { workerId } } }")
        assert {"id": "h:g1:gq", "group": "g1", "state": "idle", "inFlight": 0,
                "version": w.registry and d["workers"][0]["version"]} in d["workers"]
        assert d["workerGroups"][0]["name"] == "g1" and d["workerGroups"][0]["actual"] == 1
        d = await gql("mutation { quietWorker(id: \"h:g1:gq\") { id command } }")
        assert d["quietWorker"]["command"] == "quiet"
        d = await gql("mutation { stopWorker(id: \"h:g1:gq\") { id } }")
        assert (await asyncio.wait_for(task, 60)).stop_requested
    finally:
        if not task.done():
            w.request_stop()
            await task


async def test_a_remote_supervisor_reads_and_lowers_its_group_through_the_api(
        deps: Deps, http: httpx.AsyncClient) -> None:
    # the remote-worker protocol's role: a developer key is enough (http holds an admin key,
    # so check the rule itself too)
    from jobline.api.auth import required_role
    from jobline.shared.security.auth import Role
    from jobline.worker.group_control import RemoteControl

    assert required_role("POST", "/api/v1/worker/group") == Role.DEVELOPER
    rc = RemoteControl("http://jobline", http.headers["X-Api-Key"], transport=http._transport)
    try:
        assert await rc.open("gpu", 3) == 3
        assert await rc.open("gpu", 9) == 3  # the stored count wins
        await groups.set_desired(deps, "gpu", desired=5)
        assert await rc.desired("gpu") == 5
        assert await rc.stopped_on_request("gpu") == 4
        await rc.crashed("gpu", "box:gpu:1", 137, "killed")
        assert (await groups.crashes_since(deps, 0)) == {"gpu": 1}
    finally:
        await rc.aclose()


async def test_a_worker_that_vanishes_without_a_clean_stop_counts_as_a_crash(deps: Deps) -> None:
    from jobline.shared.fleet import control
    from jobline.shared.fleet.scaler import Scaler
    from jobline.shared.observe.workers import list_workers, register_worker

    scaler = Scaler(deps)
    for wid in ("h:g:vanished", "h:g:stopped"):
        await register_worker(deps, {"id": wid, "group": "g", "concurrency": 1}, 200)
        await control.send(deps, wid, "quiet")
    await scaler.step()  # both seen alive
    await control.mark_stopped(deps, "h:g:stopped")  # a clean stop (the worker's deregister)

    async def expired() -> bool:
        return await list_workers(deps) == []

    await wait_until(expired, message="heartbeat keys expired")
    await scaler.step()
    assert [c["workerId"] for c in await groups.recent_crashes(deps, "g")] == ["h:g:vanished"]
    assert await control.all_commands(deps) == {}  # the dead worker's command is dropped
    await scaler.step()  # accounted for once
    assert (await groups.crashes_since(deps, 0)) == {"g": 1}
    hist = await groups.history(deps, "g", 0)
    assert hist and hist[0]["actual"] == 2  # the step recorded the peak of the minute
