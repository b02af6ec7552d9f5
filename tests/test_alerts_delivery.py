"""Alert notifications end to end with real receivers: an SMTP server (aiosmtpd) and an HTTP
server taking Slack and webhook posts. The scheduler (in-process, or as real processes) evaluates
the rules and runs the delivery jobs: a failing webhook is retried (and dead-lettered after its
attempts) while the email and Slack messages still arrive; two scheduler processes notify each
transition once; a scheduler killed while a rule is pending leaves the state to its successor."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from alert_receivers import HttpReceiver, http_receiver, smtp_server

from jobline.analytics.alerting.channels import verify
from jobline.schedulers.runner import Scheduler
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.observe.workers import list_workers
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.testing import wait_until

SECRET = "webhook-signing-secret"


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(alert_eval_ms=200, alert_backoff_base_ms=200,
                          alert_backoff_cap_ms=800, alert_delivery_attempts=5,
                          dashboard_url="http://dash.example")


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    async with http_receiver() as r:
        yield r


@contextlib.asynccontextmanager
async def running_scheduler(deps: Deps) -> AsyncIterator[Scheduler]:
    s = Scheduler(deps)
    task = asyncio.create_task(s.run())
    try:
        yield s
    finally:
        s.request_stop()
        await asyncio.wait_for(task, 60)


async def make_channel(admin: Any, name: str, kind: str, config: dict[str, Any]) -> str:
    r = await admin.post("/api/v1/alert-channels",
                         json={"name": name, "kind": kind, "config": config})
    assert r.status_code == 201, r.text
    cid: str = r.json()["id"]
    return cid


async def make_rule(admin: Any, queue: str, channels: list[str], **extra: Any) -> str:
    r = await admin.post("/api/v1/alert-rules", json={
        "name": f"backlog on {queue}", "severity": "critical",
        "condition": {"metric": "backlog", "op": ">", "threshold": 0},
        "scope": {"queue": queue}, "channelIds": channels, **extra})
    assert r.status_code == 201, r.text
    rid: str = r.json()["id"]
    return rid


async def delivery_rows(deps: Deps, channel_id: str) -> list[Any]:
    return list(await deps.pool.fetch(
        "SELECT * FROM alert_deliveries WHERE channel_id = $1 ORDER BY created_at",
        uuid.UUID(channel_id)))


async def test_failing_webhook_is_retried_while_email_and_slack_arrive(
        admin: Any, deps: Deps, receiver: HttpReceiver) -> None:
    with smtp_server() as (smtp_port, mailbox):
        email = await make_channel(admin, "ops mail", "email", {
            "host": "127.0.0.1", "port": smtp_port, "security": "none",
            "fromAddress": "jobline@example.com", "to": ["a@example.com", "b@example.com"]})
        slack = await make_channel(admin, "ops slack", "slack", {
            "webhookUrls": [receiver.url("/slack")]})
        hook = await make_channel(admin, "pager", "webhook", {
            "urls": [receiver.url("/hook")], "secret": SECRET})
        receiver.fail["/hook"] = [503] * 1000  # down until the test says otherwise
        rule_id = await make_rule(admin, "watched", [email, slack, hook])
        async with running_scheduler(deps):
            job = (await jobs.submit(deps, JobSpec(queue="watched", job_type="t",
                                                   payload={}))).submitted.id

            async def email_and_slack() -> bool:
                return len(mailbox.messages) == 1 and len(receiver.at("/slack")) == 1

            await wait_until(email_and_slack, timeout=60, message="email and Slack delivered")
            # ... while the webhook is down: not sent, its record says why
            (h,) = await delivery_rows(deps, hook)
            assert h["status"] in ("queued", "retrying") and h["sent_at"] is None

            msg = mailbox.messages[0]
            assert msg["Subject"] == "[Jobline] Firing: backlog on watched"
            assert msg["X-Envelope-To"] == "a@example.com, b@example.com"
            body = msg.get_payload()
            assert f"http://dash.example/alerts?rule={rule_id}" in body
            assert "http://dash.example/jobs?queue=watched" in body
            blocks = receiver.at("/slack")[0].json()
            assert blocks["blocks"][0]["type"] == "header"
            assert "backlog on watched" in blocks["text"]
            assert "http://dash.example/jobs?queue=watched" in str(blocks["blocks"])

            async def given_up() -> Any:
                (h,) = await delivery_rows(deps, hook)
                return h if h["status"] == "failed" else None

            h = await wait_until(given_up, timeout=90, message="webhook delivery given up")
            assert h["attempts"] == 5 and h["last_error"].startswith("HTTP 503")
            assert receiver.seen["/hook"] == 5

            async def dead_lettered() -> bool:
                return await deps.pool.fetchval("SELECT status FROM jobs WHERE id = $1",
                                                h["job_id"]) == "dead_letter"

            # the delivery job's own outcome: dead-lettered after its attempts
            await wait_until(dead_lettered, timeout=30, message="delivery job dead-lettered")

            # the receiver is back: the resolution reaches all three
            receiver.fail["/hook"] = []
            await jobs.cancel(deps, job)

            async def resolved_everywhere() -> bool:
                return (len(mailbox.messages) == 2 and len(receiver.at("/slack")) == 2
                        and len(receiver.at("/hook")) == 1)

            await wait_until(resolved_everywhere, timeout=60, message="resolution delivered")
        assert mailbox.messages[1]["Subject"] == "[Jobline] Resolved: backlog on watched"
        post = receiver.at("/hook")[0]
        assert verify(SECRET, post.headers["x-jobline-timestamp"], post.body,
                      post.headers["x-jobline-signature"], int(time.time()))
        assert not verify("wrong-secret-123", post.headers["x-jobline-timestamp"], post.body,
                          post.headers["x-jobline-signature"], int(time.time()))
        payload = post.json()
        assert payload["event"] == "resolved" and payload["rule"]["id"] == rule_id
        assert payload["deliveryId"] == str((await delivery_rows(deps, hook))[1]["id"])
        # the history shows every delivery with its status
        hist = (await admin.get("/api/v1/alerts", params={"ruleId": rule_id,
                                                          "deliveries": "true"})).json()
        (alert,) = hist["alerts"]
        assert alert["status"] == "resolved"
        assert sorted((d["kind"], d["event"], d["status"]) for d in alert["deliveries"]) == [
            ("email", "firing", "sent"), ("email", "resolved", "sent"),
            ("slack", "firing", "sent"), ("slack", "resolved", "sent"),
            ("webhook", "firing", "failed"), ("webhook", "resolved", "sent")]


async def test_email_over_starttls_with_auth(admin: Any, deps: Deps, tmp_path: Path) -> None:
    with smtp_server(starttls_auth=("bot", "s3cret-pw"), cert_dir=tmp_path) as (port, mailbox):
        good = await make_channel(admin, "tls mail", "email", {
            "host": "127.0.0.1", "port": port, "security": "starttls", "username": "bot",
            "password": "s3cret-pw", "insecureSkipVerify": True,
            "fromAddress": "jobline@example.com", "to": ["ops@example.com"]})
        bad = await make_channel(admin, "wrong password", "email", {
            "host": "127.0.0.1", "port": port, "security": "starttls", "username": "bot",
            "password": "nope-nope", "insecureSkipVerify": True,
            "fromAddress": "jobline@example.com", "to": ["ops@example.com"]})
        async with running_scheduler(deps):
            (ok,) = (await admin.post(f"/api/v1/alert-channels/{good}/test")).json()["deliveries"]
            (ko,) = (await admin.post(f"/api/v1/alert-channels/{bad}/test")).json()["deliveries"]

            async def settled() -> bool:
                a = (await admin.get(f"/api/v1/alert-deliveries/{ok['id']}")).json()
                b = (await admin.get(f"/api/v1/alert-deliveries/{ko['id']}")).json()
                return a["status"] == "sent" and b["attempts"] >= 2

            await wait_until(settled, timeout=60, message="TLS mail sent, bad login retried")
        assert len(mailbox.messages) == 1
        assert mailbox.messages[0]["Subject"] == "[Jobline] Test: channel tls mail"
        assert "bot" in mailbox.logins and "refused" in mailbox.logins
        b = (await admin.get(f"/api/v1/alert-deliveries/{ko['id']}")).json()
        assert b["status"] in ("retrying", "failed") and b["error"].startswith("SMTP")
        # the server refused the login (535), the client did not merely time out waiting
        assert "535" in b["error"], b["error"]


async def test_send_test_retries_a_flaky_receiver_until_it_answers(
        admin: Any, deps: Deps, receiver: HttpReceiver) -> None:
    hook = await make_channel(admin, "two urls", "webhook", {
        "urls": [receiver.url("/flaky"), receiver.url("/fine")], "secret": SECRET})
    receiver.fail["/flaky"] = [500, 502]
    async with running_scheduler(deps):
        r = await admin.post(f"/api/v1/alert-channels/{hook}/test")
        assert r.status_code == 202
        ids = [d["id"] for d in r.json()["deliveries"]]
        assert len(ids) == 2

        async def all_sent() -> bool:
            got = [(await admin.get(f"/api/v1/alert-deliveries/{i}")).json() for i in ids]
            return all(d["status"] == "sent" for d in got)

        await wait_until(all_sent, timeout=60, message="test deliveries sent")
    flaky, fine = [(await admin.get(f"/api/v1/alert-deliveries/{i}")).json() for i in ids]
    assert flaky["attempts"] == 3 and fine["attempts"] == 1
    assert receiver.at("/flaky")[0].json()["event"] == "test"
    assert len(receiver.at("/fine")) == 1


# --- real scheduler processes ------------------------------------------------------------------


class Procs:
    def __init__(self, settings: Settings, home: Path) -> None:
        self.env = dict(os.environ, DATABASE_URL=settings.database_url or "",
                        REDIS_URL=settings.redis_url or "",
                        JOBLINE_REDIS_PREFIX=settings.redis_prefix, JOBLINE_HOME=str(home),
                        JOBLINE_ALERT_EVAL_MS="200", PYTHONPATH=os.pathsep.join(sys.path))
        self.started: list[subprocess.Popen[bytes]] = []

    def scheduler(self) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([sys.executable, "-m", "jobline", "scheduler"], env=self.env,
                             start_new_session=True)
        self.started.append(p)
        return p

    def stop_all(self) -> None:
        for p in self.started:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture
def procs(settings: Settings, tmp_path: Path) -> Iterator[Procs]:
    p = Procs(settings, tmp_path)
    yield p
    p.stop_all()


async def evaluations(deps: Deps, rule_id: str) -> int:
    n: int = await deps.pool.fetchval("SELECT evaluations FROM alert_rules WHERE id = $1",
                                      uuid.UUID(rule_id))
    return n


@pytest.mark.slow
async def test_two_scheduler_processes_notify_each_transition_once(
        admin: Any, deps: Deps, receiver: HttpReceiver, procs: Procs) -> None:
    hook = await make_channel(admin, "pager", "webhook", {
        "urls": [receiver.url("/a"), receiver.url("/b")], "secret": SECRET})
    rule_id = await make_rule(admin, "twice", [hook])
    procs.scheduler()
    procs.scheduler()
    job = (await jobs.submit(deps, JobSpec(queue="twice", job_type="t",
                                           payload={}))).submitted.id

    async def fired() -> bool:
        return len(receiver.at("/a")) >= 1 and len(receiver.at("/b")) >= 1

    await wait_until(fired, timeout=90, message="firing notified")
    await jobs.cancel(deps, job)

    async def resolved() -> bool:
        return len(receiver.at("/a")) >= 2 and len(receiver.at("/b")) >= 2

    await wait_until(resolved, timeout=90, message="resolution notified")
    # let both schedulers evaluate the rule many more times
    seen = await evaluations(deps, rule_id)

    async def twenty_more() -> bool:
        return await evaluations(deps, rule_id) >= seen + 20

    await wait_until(twenty_more, timeout=90, message="20 more evaluations")
    for path in ("/a", "/b"):
        assert [p.json()["event"] for p in receiver.at(path)] == ["firing", "resolved"], path
    assert [a["status"] for a in await deps.pool.fetch(
        "SELECT status FROM alerts WHERE rule_id = $1", uuid.UUID(rule_id))] == ["resolved"]
    # both processes ran (each registered its delivery worker)
    alert_workers = [w for w in await list_workers(deps) if "jobline.alerts" in w["queues"]]
    assert len(alert_workers) == 2


@pytest.mark.slow
async def test_restart_mid_pending_keeps_the_state(
        admin: Any, deps: Deps, receiver: HttpReceiver, procs: Procs) -> None:
    hook = await make_channel(admin, "pager", "webhook", {"urls": [receiver.url("/p")]})
    rule_id = await make_rule(admin, "slow", [hook], forS=3)
    first = procs.scheduler()
    await jobs.submit(deps, JobSpec(queue="slow", job_type="t", payload={}))

    async def pending() -> Any:
        r = await deps.pool.fetchrow("SELECT * FROM alert_rules WHERE id = $1",
                                     uuid.UUID(rule_id))
        return r if r["state"] == "pending" else None

    before = await wait_until(pending, timeout=90, message="rule pending")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert (await deps.pool.fetchval("SELECT state FROM alert_rules WHERE id = $1",
                                     uuid.UUID(rule_id))) == "pending"
    procs.scheduler()

    async def fired() -> bool:
        return len(receiver.at("/p")) == 1

    await wait_until(fired, timeout=90, message="fired after the restart")
    (alert,) = await deps.pool.fetch("SELECT * FROM alerts WHERE rule_id = $1",
                                     uuid.UUID(rule_id))
    # the same episode: pending since before the restart, fired 'for' after that instant
    assert alert["id"] == before["alert_id"]
    assert alert["started_at"] == before["state_since"]
    assert (alert["fired_at"] - alert["started_at"]).total_seconds() >= 3
    assert receiver.at("/p")[0].json()["alertId"] == str(before["alert_id"])
