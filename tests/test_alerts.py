"""Alert rules, channels, silences and the evaluation tick (jobline.analytics.alerting), on a
FakeClock: the ok -> pending -> firing -> resolved machine, exactly one evaluation per due rule
with concurrent ticks, the grouped built-in dead-letter rule, the metrics over rollups and live
state, 422s naming the field, masked channel secrets, the history and delivery records."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from jobline.analytics.alerting import evaluate, store
from jobline.analytics.alerting.model import DELIVERY_JOB_TYPE, DELIVERY_QUEUE, RuleIn
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.observe import sketch
from jobline.shared.platform.clock import Clock, FakeClock, to_dt
from jobline.shared.platform.connections import Deps

BUILTIN_ID = uuid.UUID("00000000-0000-7000-8000-0000000a1e70")


@pytest.fixture
def clock() -> Clock:
    return FakeClock()


def fc(deps: Deps) -> FakeClock:
    assert isinstance(deps.clock, FakeClock)
    return deps.clock


async def channel(admin: Any, kind: str = "webhook", **cfg: Any) -> dict[str, Any]:
    config = cfg or {"urls": ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"],
                     "secret": "s3cret-signing-key"}
    r = await admin.post("/api/v1/alert-channels",
                         json={"name": f"{kind} channel", "kind": kind, "config": config})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def rule(admin: Any, **body: Any) -> dict[str, Any]:
    payload = {"name": "backlog", "condition": {"metric": "backlog", "op": ">", "threshold": 2},
               "scope": {"queue": "alerted"}, **body}
    r = await admin.post("/api/v1/alert-rules", json=payload)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def submit(deps: Deps, n: int, queue: str = "alerted") -> list[uuid.UUID]:
    res = await jobs.submit_many(deps, [JobSpec(queue=queue, job_type="t", payload={})
                                        for _ in range(n)])
    return [r.submitted.id for r in res]


async def deliveries(deps: Deps) -> list[Any]:
    return list(await deps.pool.fetch(
        "SELECT d.*, a.rule_id FROM alert_deliveries d LEFT JOIN alerts a ON a.id = d.alert_id "
        "ORDER BY d.created_at, d.recipient"))


async def state(deps: Deps, rule_id: str) -> Any:
    return await deps.pool.fetchrow("SELECT * FROM alert_rules WHERE id = $1",
                                    uuid.UUID(rule_id))


async def tick(deps: Deps) -> evaluate.TickReport:
    return await evaluate.tick(deps)


# --- CRUD, validation, roles, masking ---------------------------------------------------------


@pytest.mark.parametrize(("body", "field"), [
    ({"condition": {"metric": "nope", "threshold": 1}}, "condition.metric"),
    ({"condition": {"metric": "backlog"}}, "condition.threshold"),
    ({"condition": {"metric": "sla_compliance", "threshold": 0.99}}, "condition.targetMs"),
    ({"condition": {"metric": "failure_rate", "threshold": 10}}, "condition.threshold"),
    ({"condition": {"metric": "backlog", "threshold": 1}, "scope": {"jobType": "x"}},
     "scope.jobType"),
    ({"condition": {"metric": "backlog", "threshold": 1}, "forS": -1}, "forS"),
    ({"condition": {"metric": "backlog", "threshold": 1}, "severity": "bad"}, "severity"),
    ({"condition": {"metric": "backlog", "threshold": 1},
      "channelIds": [str(uuid.uuid4())]}, "channelIds[0]"),
    ({"condition": {"metric": "backlog", "threshold": 1}, "colour": "red"}, "colour"),
    ({"condition": {"metric": "backlog", "threshold": 1, "windowS": 5}}, "condition.windowS"),
])
async def test_an_invalid_rule_is_a_422_naming_the_field(admin: Any, body: dict[str, Any],
                                                         field: str) -> None:
    r = await admin.post("/api/v1/alert-rules", json={"name": "r", **body})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_error"
    assert err["field"] == field, err


async def test_rule_crud_over_rest(admin: Any, deps: Deps) -> None:
    ch = await channel(admin)
    created = await rule(admin, channelIds=[ch["id"]], forS=60, severity="critical",
                         renotifyS=600)
    assert created["state"] == "ok" and created["forS"] == 60
    assert created["channelIds"] == [ch["id"]]
    listed = (await admin.get("/api/v1/alert-rules")).json()["rules"]
    # the built-in dead-letter rule is always there, first
    assert listed[0]["builtin"] == "dead_letters"
    assert created["id"] in [r["id"] for r in listed]
    r = await admin.patch(f"/api/v1/alert-rules/{created['id']}",
                          json={"condition": {"metric": "backlog", "threshold": 5},
                                "enabled": False})
    assert r.status_code == 200 and r.json()["condition"]["threshold"] == 5
    assert r.json()["enabled"] is False
    r = await admin.patch(f"/api/v1/alert-rules/{created['id']}",
                          json={"scope": {"queue": "q", "jobType": "x"}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "scope.jobType"
    assert (await admin.delete(f"/api/v1/alert-rules/{created['id']}")).status_code == 204
    assert (await admin.get(f"/api/v1/alert-rules/{created['id']}")).status_code == 404
    # a built-in rule can be disabled, not deleted
    assert (await admin.delete(f"/api/v1/alert-rules/{BUILTIN_ID}")).status_code == 409
    r = await admin.patch(f"/api/v1/alert-rules/{BUILTIN_ID}", json={"channelIds": [ch["id"]]})
    assert r.status_code == 200 and r.json()["channelIds"] == [ch["id"]]
    # deleting a channel takes it off the rules
    assert (await admin.delete(f"/api/v1/alert-channels/{ch['id']}")).status_code == 204
    assert (await admin.get(f"/api/v1/alert-rules/{BUILTIN_ID}")).json()["channelIds"] == []


async def test_writes_are_admin_only_reads_are_a_developers(admin: Any, deps: Deps) -> None:
    from jobline.shared.security.auth import create_key

    ch = await channel(admin)
    _, key = await create_key(deps, "developer", "dev")
    dev = admin
    headers = {"X-Api-Key": key}
    assert (await dev.get("/api/v1/alert-rules", headers=headers)).status_code == 200
    assert (await dev.get("/api/v1/alert-channels", headers=headers)).status_code == 200
    assert (await dev.get("/api/v1/alerts", headers=headers)).status_code == 200
    r = await dev.post("/api/v1/alert-rules", json={
        "name": "x", "condition": {"metric": "backlog", "threshold": 1}}, headers=headers)
    assert r.status_code == 403
    assert (await dev.delete(f"/api/v1/alert-channels/{ch['id']}", headers=headers)).status_code == 403
    assert (await dev.post(f"/api/v1/alert-channels/{ch['id']}/test", headers=headers)).status_code == 403
    assert (await dev.post("/api/v1/alert-silences",
                           json={"durationS": 60}, headers=headers)).status_code == 403


async def test_channel_secrets_are_masked_in_every_read(admin: Any, deps: Deps) -> None:
    slack_url = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"
    email = await channel(admin, "email", host="127.0.0.1", port=2525, security="none",
                          username="bot", password="hunter2-password",
                          fromAddress="jobline@example.com",
                          to=["a@example.com", "b@example.com"])
    slack = await channel(admin, "slack", webhookUrls=[slack_url])
    hook = await channel(admin, "webhook", urls=["https://example.com/hook?token=tok123"],
                         secret="signing-secret-1", headers={"Authorization": "Bearer abc"})
    reads = [email, slack, hook, *(await admin.get("/api/v1/alert-channels")).json()["channels"]]
    for c in (email, slack, hook):
        reads.append((await admin.get(f"/api/v1/alert-channels/{c['id']}")).json())
    r = await admin.patch(f"/api/v1/alert-channels/{email['id']}", json={"name": "renamed"})
    reads.append(r.json())
    text = str(reads)
    for secret in ("hunter2-password", "XXXXSECRETXXXX", "tok123", "signing-secret-1",
                   "Bearer abc"):
        assert secret not in text
    assert email["config"]["password"] == "***"
    assert slack["config"]["webhookUrls"] == ["https://hooks.slack.com/***"]
    # sending the masked values back keeps the stored secrets
    r = await admin.patch(f"/api/v1/alert-channels/{hook['id']}", json={"config": {
        **hook["config"], "urls": [*hook["config"]["urls"], "https://other.example/x"]}})
    assert r.status_code == 200, r.text
    stored = (await deps.pool.fetchval("SELECT config FROM alert_channels WHERE id = $1",
                                       uuid.UUID(hook["id"])))
    assert stored["secret"] == "signing-secret-1"
    assert stored["headers"] == {"Authorization": "Bearer abc"}
    assert stored["urls"] == ["https://example.com/hook?token=tok123", "https://other.example/x"]
    r = await admin.patch(f"/api/v1/alert-channels/{email['id']}", json={"config": {
        **email["config"], "to": ["c@example.com"]}})
    assert r.status_code == 200
    stored = await deps.pool.fetchval("SELECT config FROM alert_channels WHERE id = $1",
                                      uuid.UUID(email["id"]))
    assert stored["password"] == "hunter2-password" and stored["to"] == ["c@example.com"]
    bad = await admin.post("/api/v1/alert-channels", json={
        "name": "x", "kind": "email", "config": {"host": "h", "fromAddress": "a@b", "to": []}})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "config.to"


# --- the state machine ---------------------------------------------------------------------------


async def test_ok_pending_firing_resolved_each_notified_once(admin: Any, deps: Deps) -> None:
    ch = await channel(admin)  # two recipients
    r = await rule(admin, forS=30, channelIds=[ch["id"]])
    await tick(deps)
    assert (await state(deps, r["id"]))["state"] == "ok"
    ids = await submit(deps, 3)
    fc(deps).advance(10_000)
    await tick(deps)
    s = await state(deps, r["id"])
    assert s["state"] == "pending" and s["last_value"] == 3
    pending_since = s["state_since"]
    fc(deps).advance(10_000)
    await tick(deps)
    assert (await state(deps, r["id"]))["state"] == "pending"
    assert await deliveries(deps) == []
    fc(deps).advance(25_000)
    rep = await tick(deps)
    s = await state(deps, r["id"])
    assert s["state"] == "firing" and rep.transitions == 1
    alert = await deps.pool.fetchrow("SELECT * FROM alerts WHERE id = $1", s["alert_id"])
    assert alert["status"] == "firing" and alert["started_at"] == pending_since
    ds = await deliveries(deps)
    assert [(d["event"], d["recipient"]) for d in ds] == [("firing", 0), ("firing", 1)]
    # each delivery is one job on the internal queue, its payload only the delivery id
    js = await deps.pool.fetch("SELECT queue_name, job_type, payload FROM jobs "
                               "WHERE queue_name = $1", DELIVERY_QUEUE)
    assert sorted(j["payload"]["deliveryId"] for j in js) == sorted(str(d["id"]) for d in ds)
    assert {j["job_type"] for j in js} == {DELIVERY_JOB_TYPE}
    # still firing: no new notification
    fc(deps).advance(10_000)
    await tick(deps)
    assert len(await deliveries(deps)) == 2
    await jobs.cancel_many(deps, ids)
    fc(deps).advance(10_000)
    await tick(deps)
    s = await state(deps, r["id"])
    assert s["state"] == "ok" and s["alert_id"] is None
    ds = await deliveries(deps)
    assert [d["event"] for d in ds] == ["firing", "firing", "resolved", "resolved"]
    alert = await deps.pool.fetchrow("SELECT * FROM alerts WHERE id = $1", alert["id"])
    assert alert["status"] == "resolved" and alert["resolved_at"] is not None
    assert alert["peak_value"] == 3
    # the message links to the rule's and the queue's dashboard pages
    msg = ds[0]["message"]
    assert msg["links"]["rule"].endswith(f"/alerts?rule={r['id']}")
    assert msg["links"]["queues"] == {"alerted": f"{deps.settings.dashboard_url}/jobs?queue=alerted"}


async def test_pending_that_clears_is_cancelled_quietly(admin: Any, deps: Deps) -> None:
    ch = await channel(admin)
    r = await rule(admin, forS=60, channelIds=[ch["id"]])
    ids = await submit(deps, 3)
    await tick(deps)
    assert (await state(deps, r["id"]))["state"] == "pending"
    await jobs.cancel_many(deps, ids)
    fc(deps).advance(10_000)
    await tick(deps)
    assert (await state(deps, r["id"]))["state"] == "ok"
    assert await deliveries(deps) == []
    assert [a["status"] for a in await deps.pool.fetch(
        "SELECT status FROM alerts WHERE rule_id = $1", uuid.UUID(r["id"]))] == ["cancelled"]


async def test_concurrent_ticks_evaluate_each_due_rule_once(admin: Any, deps: Deps) -> None:
    ch = await channel(admin)
    rules = [await rule(admin, name=f"r{i}", channelIds=[ch["id"]]) for i in range(20)]
    await submit(deps, 3)
    reps = await asyncio.gather(*(tick(deps) for _ in range(6)))
    assert sum(r.evaluated for r in reps) == 20
    assert sum(r.transitions for r in reps) == 20
    for r in rules:
        assert (await state(deps, r["id"]))["evaluations"] == 1
    assert len(await deliveries(deps)) == 40
    # not due again until the interval has passed
    assert (await tick(deps)).evaluated == 0
    fc(deps).advance(deps.settings.alert_eval_ms)
    reps = await asyncio.gather(*(tick(deps) for _ in range(4)))
    assert sum(r.evaluated for r in reps) == 20
    assert len(await deliveries(deps)) == 40  # still firing: nothing new


async def test_renotify_until_acknowledged_and_silences_mute(admin: Any, deps: Deps) -> None:
    ch = await channel(admin, "webhook", urls=["http://127.0.0.1:9/x"])
    r = await rule(admin, renotifyS=60, channelIds=[ch["id"]])
    await submit(deps, 3)
    await tick(deps)
    fc(deps).advance(30_000)
    await tick(deps)
    fc(deps).advance(31_000)
    await tick(deps)
    assert [d["event"] for d in await deliveries(deps)] == ["firing", "renotify"]
    alert_id = (await state(deps, r["id"]))["alert_id"]
    a = await admin.post(f"/api/v1/alerts/{alert_id}/acknowledge")
    assert a.status_code == 200 and a.json()["acknowledgedAt"] is not None
    fc(deps).advance(61_000)
    await tick(deps)
    assert len(await deliveries(deps)) == 2
    # a silence on the queue mutes a new rule's firing; the transition is still recorded
    r2 = await rule(admin, name="silenced", channelIds=[ch["id"]])
    s = await admin.post("/api/v1/alert-silences", json={"queue": "alerted", "durationS": 300,
                                                          "reason": "maintenance"})
    assert s.status_code == 201 and s.json()["active"]
    await tick(deps)
    st = await state(deps, r2["id"])
    assert st["state"] == "firing"
    assert (await deps.pool.fetchval("SELECT silenced FROM alerts WHERE id = $1",
                                     st["alert_id"])) is True
    assert len(await deliveries(deps)) == 2
    listed = (await admin.get("/api/v1/alert-silences")).json()["silences"]
    assert [x["reason"] for x in listed] == ["maintenance"]
    fc(deps).advance(10_000)
    await tick(deps)  # still silenced: still nothing
    assert len(await deliveries(deps)) == 2
    assert (await admin.delete(f"/api/v1/alert-silences/{s.json()['id']}")).status_code == 204
    assert (await admin.get("/api/v1/alert-silences")).json()["silences"] == []
    # the silence is over and the alert still fires: its firing is notified now, once
    fc(deps).advance(10_000)
    await tick(deps)
    fc(deps).advance(10_000)
    await tick(deps)
    ds = await deliveries(deps)
    assert [(d["event"], d["rule_id"]) for d in ds[2:]] == [("firing", uuid.UUID(r2["id"]))]


async def test_builtin_dead_letter_rule_groups_a_burst_into_one_notification(
        admin: Any, deps: Deps) -> None:
    ch = await channel(admin, "webhook", urls=["http://127.0.0.1:9/x"])
    await admin.patch(f"/api/v1/alert-rules/{BUILTIN_ID}", json={"channelIds": [ch["id"]]})
    # the migration made it due at install time; this test's clock starts later
    await deps.pool.execute("UPDATE alert_rules SET next_eval_at = $1 WHERE id = $2",
                            to_dt(fc(deps).now_ms()), BUILTIN_ID)
    await submit(deps, 5, "old")
    await deps.pool.execute("UPDATE jobs SET status = 'dead_letter' WHERE queue_name = 'old'")
    await tick(deps)  # the first evaluation takes what is dead already as the baseline
    assert (await state(deps, str(BUILTIN_ID)))["state"] == "ok"

    async def dead_letter(n: int, queue: str) -> None:
        await submit(deps, n, queue)
        await deps.pool.execute("UPDATE jobs SET status = 'dead_letter' WHERE queue_name = $1 "
                                "AND status = 'pending'", queue)

    for _i in range(6):  # 6 evaluations, 10 s apart, 1,500 dead letters over two queues
        await dead_letter(200, "mail")
        await dead_letter(50, "images")
        fc(deps).advance(10_000)
        await tick(deps)
    st = await state(deps, str(BUILTIN_ID))
    assert st["state"] == "firing"
    ds = await deliveries(deps)
    assert [d["event"] for d in ds] == ["firing"]
    alert = await deps.pool.fetchrow("SELECT * FROM alerts WHERE id = $1", st["alert_id"])
    assert alert["details"]["deadLettered"] == 1500
    assert alert["details"]["perQueue"] == {"mail": 1200, "images": 300}
    # quiet for the window: resolved, with the episode's count
    fc(deps).advance(301_000)
    await tick(deps)
    assert (await state(deps, str(BUILTIN_ID)))["state"] == "ok"
    ds = await deliveries(deps)
    assert [d["event"] for d in ds] == ["firing", "resolved"]
    assert ds[1]["message"]["details"]["deadLettered"] == 1500


# --- metrics -------------------------------------------------------------------------------------


async def _rollup(deps: Deps, minute_ms: int, queue: str, job_type: str, completed: int,
                  failed: int) -> None:
    await deps.pool.execute(
        "INSERT INTO job_rollups (minute, queue_name, job_type, completed, failed) "
        "VALUES ($1, $2, $3, $4, $5)", to_dt(minute_ms // 60_000 * 60_000), queue, job_type,
        completed, failed)


async def _measure(deps: Deps, body: dict[str, Any]) -> float | None:
    from jobline.analytics.alerting.metrics import Snapshot

    r = await store.create_rule(deps, RuleIn.model_validate(
        {"name": "m", **body}))
    async with deps.pool.acquire() as conn:
        return (await Snapshot(deps, conn, fc(deps).now_ms()).measure(r)).value


async def test_metrics_over_rollups_and_live_state(deps: Deps) -> None:
    now = fc(deps).now_ms()
    await _rollup(deps, now - 120_000, "mail", "send", 80, 20)
    await _rollup(deps, now - 60_000, "mail", "render", 90, 10)
    await _rollup(deps, now - 3_600_000, "mail", "send", 0, 100)  # outside the window
    await _rollup(deps, now, "other", "x", 10, 0)
    for ms, n in ((20, 90), (1500, 10)):
        await deps.pool.execute(
            "INSERT INTO job_rollup_histograms VALUES ($1, 'mail', 'send', 'duration', $2, $3)",
            to_dt(now // 60_000 * 60_000), sketch.bucket(ms), n)
    fr = {"metric": "failure_rate", "threshold": 0.1, "windowS": 300}
    assert await _measure(deps, {"condition": fr, "scope": {"queue": "mail"}}) == 0.15
    assert await _measure(deps, {"condition": fr, "scope": {"queue": "mail",
                                                            "jobType": "send"}}) == 0.2
    assert await _measure(deps, {"condition": {**fr, "minSamples": 1000}}) is None
    assert await _measure(deps, {"condition": {"metric": "throughput", "threshold": 1,
                                               "windowS": 300}}) == 36.0
    assert await _measure(deps, {"condition": {"metric": "p95_duration_ms",
                                               "threshold": 1}}) == sketch.bounds(
                                                   sketch.bucket(1500))[1]
    sla = await _measure(deps, {"condition": {"metric": "sla_compliance", "threshold": 0.9,
                                              "targetMs": 1000}})
    assert sla == 0.9
    await submit(deps, 4, "mail")
    fc(deps).advance(7_000)
    assert await _measure(deps, {"condition": {"metric": "backlog", "threshold": 1}}) == 4
    age = await _measure(deps, {"condition": {"metric": "oldest_pending_age_s",
                                              "threshold": 1}, "scope": {"queue": "mail"}})
    assert age == 7.0
    assert await _measure(deps, {"condition": {"metric": "active_workers", "op": "<",
                                               "threshold": 1}}) == 0
    await deps.pool.execute(
        "INSERT INTO consumer_watermarks (consumer, part, seq) VALUES "
        "('alerts.last_fired', 'mail', $1), ('alerts.last_fired', 'old', $2)",
        fc(deps).now_ms() - 60_000, fc(deps).now_ms() - 3_600_000)
    assert await _measure(deps, {"condition": {"metric": "anomaly", "threshold": 0,
                                               "windowS": 600}}) == 1


async def test_history_is_filterable_with_delivery_records(admin: Any, deps: Deps) -> None:
    ch = await channel(admin)
    r1 = await rule(admin, name="one", severity="critical", channelIds=[ch["id"]])
    r2 = await rule(admin, name="two", scope={"queue": "other"}, channelIds=[ch["id"]])
    await submit(deps, 3)
    await submit(deps, 3, "other")
    await tick(deps)
    page = (await admin.get("/api/v1/alerts", params={"deliveries": "true"})).json()
    assert page["firing"] == 2 and len(page["alerts"]) == 2
    assert all(len(a["deliveries"]) == 2 for a in page["alerts"])
    assert {d["status"] for a in page["alerts"] for d in a["deliveries"]} == {"queued"}
    crit = (await admin.get("/api/v1/alerts", params={"severity": "critical"})).json()
    assert [a["ruleId"] for a in crit["alerts"]] == [r1["id"]]
    byq = (await admin.get("/api/v1/alerts", params={"queue": "other"})).json()
    assert [a["ruleId"] for a in byq["alerts"]] == [r2["id"]]
    byrule = (await admin.get("/api/v1/alerts", params={"ruleId": r1["id"],
                                                         "status": "firing"})).json()
    assert len(byrule["alerts"]) == 1
    first = (await admin.get("/api/v1/alerts", params={"limit": 1})).json()
    assert first["nextCursor"]
    second = (await admin.get("/api/v1/alerts", params={"limit": 1,
                                                         "cursor": first["nextCursor"]})).json()
    assert {first["alerts"][0]["id"], second["alerts"][0]["id"]} == {
        a["id"] for a in page["alerts"]}
    one = (await admin.get(f"/api/v1/alerts/{first['alerts'][0]['id']}/deliveries")).json()
    assert [d["channelName"] for d in one["deliveries"]] == ["webhook channel"] * 2
    bad = await admin.get("/api/v1/alerts", params={"status": "bogus"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "status"
    assert (await admin.get("/api/v1/alerts", params={"nope": "1"})).status_code == 400


async def test_unsubmitted_deliveries_are_swept_once(admin: Any, deps: Deps) -> None:
    ch = await channel(admin)
    c = await store.get_channel(deps, uuid.UUID(ch["id"]))
    async with deps.pool.acquire() as conn:
        ids = await store.insert_deliveries(conn, fc(deps).now_ms(), [
            store.NewDelivery(None, c, 0, "test", {"summary": "x"})])
    fc(deps).advance(evaluate.UNSUBMITTED_AFTER_MS + 1)
    assert await evaluate.sweep_unsubmitted(deps) == 1
    # a crash after the submit but before job_id was noted: the key returns the same job
    await deps.pool.execute("UPDATE alert_deliveries SET job_id = NULL")
    assert await evaluate.sweep_unsubmitted(deps) == 1
    assert await evaluate.sweep_unsubmitted(deps) == 0
    assert await deps.pool.fetchval("SELECT count(*) FROM jobs WHERE payload->>'deliveryId' = $1",
                                    str(ids[0])) == 1


# --- GraphQL -------------------------------------------------------------------------------------


async def test_graphql_rules_channels_and_history(admin: Any, deps: Deps) -> None:
    from jobline.shared.security.auth import create_key

    async def gql(query: str, headers: dict[str, str] | None = None,
                  **variables: Any) -> dict[str, Any]:
        r = await admin.post("/graphql", json={"query": query, "variables": variables},
                             headers=headers or {})
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    ch = await gql("""mutation($in: AlertChannelInput!) { createAlertChannel(input: $in) {
                        id kind config } }""",
                   **{"in": {"name": "h", "kind": "webhook", "config": {
                       "urls": ["https://example.com/x?token=abc"], "secret": "12345678-secret"}}})
    c = ch["data"]["createAlertChannel"]
    assert c["config"]["secret"] == "***" and "abc" not in str(c)
    bad = await gql("""mutation($in: AlertRuleInput!) { createAlertRule(input: $in) { id } }""",
                    **{"in": {"name": "x", "condition": {"metric": "sla_compliance",
                                                         "threshold": 0.9}}})
    err = bad["errors"][0]["extensions"]
    assert err["code"] == "BAD_USER_INPUT" and err["field"] == "condition.targetMs"
    made = await gql("""mutation($in: AlertRuleInput!) { createAlertRule(input: $in) {
                          id state condition { metric threshold } channelIds } }""",
                     **{"in": {"name": "g", "condition": {"metric": "backlog", "threshold": 0},
                               "scope": {"queue": "gq"}, "channelIds": [c["id"]]}})
    rule_id = made["data"]["createAlertRule"]["id"]
    await submit(deps, 1, "gq")
    await tick(deps)
    page = await gql("""{ alerts(status: "firing") { firing nextCursor alerts {
                           id ruleId status deliveries { kind event status } } } }""")
    alerts = page["data"]["alerts"]
    assert alerts["firing"] == 1 and alerts["alerts"][0]["ruleId"] == rule_id
    assert alerts["alerts"][0]["deliveries"] == [
        {"kind": "webhook", "event": "firing", "status": "queued"}]
    _, key = await create_key(deps, "developer", "dev")
    dev = {"X-Api-Key": key}
    denied = await gql("mutation($id: ID!) { deleteAlertRule(id: $id) }", dev, id=rule_id)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    ack = await gql("""mutation($id: ID!) { acknowledgeAlert(id: $id) { acknowledgedBy } }""",
                    dev, id=alerts["alerts"][0]["id"])
    assert ack["data"]["acknowledgeAlert"]["acknowledgedBy"] == "dev"
    rules = await gql("{ alertRules { id builtin state } }", dev)
    assert {r["id"]: r["state"] for r in rules["data"]["alertRules"]}[rule_id] == "firing"
