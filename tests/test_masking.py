"""Payload masking: secrets are masked wherever stored jobs are shown (REST reads and listings,
DLQ listing and CSV, schedules, events, logs) while handlers receive the real values."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from jobline.api.app import create_app
from jobline.shared.platform.connections import Deps
from jobline.shared.security.masking import MASK, MaskingFilter, mask, mask_text
from jobline.testing import drain, serve_app
from jobline.worker.registry import Registry

SECRETS = ("hunter2", "tok-123", "s3cr3t", "Bearer-abc")
PAYLOAD: dict[str, Any] = {
    "user": "ada", "Password": "hunter2",
    "nested": {"apiToken": "tok-123", "keep": "visible"},
    "items": [{"client_secret": "s3cr3t"}, {"n": 1}],
    "headers": {"AUTHORIZATION": "Bearer-abc"},
}


def test_mask_nested_case_insensitive_and_pure() -> None:
    original = {"a": [{"X-API-KEY": 1, "ok": [{"sessionId": "z"}]}], "PassWord": None}
    out = mask(original)
    assert out == {"a": [{"X-API-KEY": MASK, "ok": [{"sessionId": MASK}]}], "PassWord": MASK}
    assert original["PassWord"] is None  # input untouched
    assert mask({"password": 1, "custom": 2}, ("CUSTOM",)) == {"password": 1, "custom": MASK}
    assert mask({"password": 1}, ()) == {"password": 1}
    assert mask("password") == "password" and mask(3) == 3
    assert mask_text('login failed: password=hunter2, "token": "t0k" ok') == (
        'login failed: password=***, "token": "***" ok')
    assert mask_text(None) is None


def test_log_filter_masks_structured_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("jobline.test_masking")
    f = MaskingFilter()
    caplog.handler.addFilter(f)
    try:
        with caplog.at_level(logging.INFO, logger="jobline.test_masking"):
            logger.info("submitting %s to %s", PAYLOAD, "work")
            logger.info("mapping %(password)s", {"password": "hunter2"})
    finally:
        caplog.handler.removeFilter(f)
    assert "ada" in caplog.text and "visible" in caplog.text
    for s in SECRETS:
        assert s not in caplog.text


async def test_handler_gets_real_values_reads_and_listings_are_masked(
        deps: Deps, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[dict[str, Any]] = []
    reg = Registry()

    @reg.job("login", queue="sec", max_attempts=1)
    async def login(payload: dict[str, Any]) -> dict[str, Any]:
        seen.append(payload)
        if payload.get("fail"):
            raise RuntimeError(f"login failed: password={payload['Password']}")
        return {"session_token": "tok-123", "ok": True}

    async for http in serve_app(create_app(deps.settings, deps=deps)):
        done = (await http.post("/api/v1/jobs", json={
            "queue": "sec", "jobType": "login", "payload": PAYLOAD})).json()["jobId"]
        dead = (await http.post("/api/v1/jobs", json={
            "queue": "sec", "jobType": "login", "payload": {**PAYLOAD, "fail": True},
            "maxAttempts": 1})).json()["jobId"]
        sched = await http.post("/api/v1/scheduled-jobs", json={
            "name": "nightly", "queue": "sec", "jobType": "login", "payload": PAYLOAD,
            "schedule": "0 3 * * *"})
        assert sched.status_code == 201, sched.text
        with caplog.at_level(logging.DEBUG):
            await drain(deps, reg, queues=["sec"])

        # the handler saw every real value
        assert sorted(p["Password"] for p in seen) == ["hunter2", "hunter2"]
        assert all(p["nested"]["apiToken"] == "tok-123" for p in seen)
        assert all(p["headers"]["AUTHORIZATION"] == "Bearer-abc" for p in seen)
        # ... and they are stored unmasked (the worker reads the truth)
        stored = await deps.pool.fetchval("SELECT payload FROM jobs WHERE id = $1::uuid", done)
        assert stored["Password"] == "hunter2"

        responses: list[httpx.Response] = [
            await http.get(f"/api/v1/jobs/{done}"),
            await http.get(f"/api/v1/jobs/{dead}"),
            await http.get("/api/v1/jobs", params={"queue": "sec"}),
            await http.get("/api/v1/admin/dlq"),
            await http.get("/api/v1/admin/dlq.csv"),
            await http.get("/api/v1/scheduled-jobs"),
            await http.get(f"/api/v1/scheduled-jobs/{sched.json()['id']}"),
        ]
        for resp in responses:
            assert resp.status_code == 200, resp.text
            for s in SECRETS:
                assert s not in resp.text, (resp.request.url, s)
            assert "visible" in resp.text or "visible" in resp.text.replace('""', '"')
        job = responses[0].json()
        assert job["payload"]["Password"] == MASK
        assert job["payload"]["nested"] == {"apiToken": MASK, "keep": "visible"}
        assert job["payload"]["items"][0] == {"client_secret": MASK}
        assert job["result"] == {"session_token": MASK, "ok": True}
        failed = responses[1].json()
        assert failed["status"] == "dead_letter"
        assert failed["error"].endswith("login failed: password=***")
        assert failed["attemptHistory"][0]["error"].endswith("password=***")
        assert responses[3].json()["jobs"][0]["payload"]["Password"] == MASK

    # events carry no payload and their error text is masked in the database
    rows = await deps.pool.fetch("SELECT coalesce(data::text, '') AS d, coalesce(error, '') AS e "
                                 "FROM job_events")
    assert rows
    for r in rows:
        for s in SECRETS:
            assert s not in r["d"] and s not in r["e"]
    assert "password=***" in " ".join(r["e"] for r in rows)
    for s in SECRETS:
        assert s not in caplog.text

    # ... and the audit log (the outbox itself, migration 0011)
    async for http in serve_app(create_app(deps.settings, deps=deps)):
        audit = await http.get("/api/v1/audit", params={"jobId": dead})
    assert audit.status_code == 200, audit.text
    assert any(e.get("error") and "password=***" in e["error"]
               for e in audit.json()["events"]), audit.text
    for s in SECRETS:
        assert s not in audit.text


async def test_mask_keys_are_configurable(deps: Deps) -> None:
    custom = deps.settings.with_(mask_keys=("iban",))
    async for http in serve_app(create_app(custom, deps=deps)):
        jid = (await http.post("/api/v1/jobs", json={
            "queue": "sec", "jobType": "pay", "payload": {"IBAN_number": "DE00", "password": "p"}}
        )).json()["jobId"]
        body = (await http.get(f"/api/v1/jobs/{jid}")).json()
    assert body["payload"] == {"IBAN_number": MASK, "password": "p"}
