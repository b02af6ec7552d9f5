"""Failure prediction (issue 17, item 1) on a history made through the real engine: the model
beats the job type's historical rate on a time-ordered holdout, is stored without pickle, and
explains an estimate with the features that moved it."""

from __future__ import annotations

import random

import httpx
import orjson
import pytest

from jobline.analytics.fold import make_fold
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome
from jobline.shared.events.buses import create_bus
from jobline.shared.events.outbox import relay_once
from jobline.shared.platform.clock import FakeClock
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(backoff_base_ms=1, backoff_cap_ms=1)


def _fails(payload: dict[str, object], attempt: int, r: random.Random) -> str | None:
    """The world: big videos time out, one codec is unsupported (never recovers), a little
    noise; a retried timeout usually succeeds."""
    if payload["codec"] == "av1":
        return "UnsupportedCodec"
    size = float(payload["videoSizeMb"])  # type: ignore[arg-type]
    p = (0.7 if size > 3000 else 0.04) / attempt
    return "TimeoutError" if r.random() < p else None


async def _history(deps: Deps, clock: FakeClock, n: int, seed: int) -> None:
    """``n`` jobs submitted over ``n / 100`` minutes, worked as they come (retries included), so
    every slice of time holds the same mix of first attempts and retries."""
    r = random.Random(seed)
    by_id: dict[object, dict[str, object]] = {}
    submitted = 0
    while True:
        if submitted < n:
            payloads = [{"videoSizeMb": round(r.lognormvariate(6.5, 1.0), 1),
                         "codec": r.choices(["h264", "vp9", "av1"], [0.7, 0.27, 0.03])[0],
                         "title": "x" * r.randint(1, 40), "password": "never-read"}
                        for _ in range(100)]
            subs = await jobs.submit_many(deps, [JobSpec(queue="video", job_type="encode",
                                                         payload=p, max_attempts=3)
                                                 for p in payloads])
            by_id.update({s.submitted.id: p for s, p in zip(subs, payloads, strict=True)})
            submitted += 100
        clock.advance(60_000)
        claimed = await jobs.claim(deps, "w", ["video"], 1000)
        if not claimed and submitted >= n:
            break
        ok, bad = [], []
        for c in claimed:
            err = _fails(by_id[c.id], c.attempt, r)
            (bad if err else ok).append((c, err))
        await jobs.complete(deps, [Outcome(c.id, c.token, ok=True) for c, _ in ok])
        await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="boom", error_type=e)
                               for c, e in bad], [c.attempt for c, _ in bad])


async def _fold_rollups(deps: Deps) -> None:
    bus = await create_bus(deps.settings)
    try:
        fold = make_fold(deps)
        while await relay_once(deps, bus, fold=fold):
            pass
    finally:
        await bus.close()


async def test_the_model_beats_the_type_rate_and_explains_itself(
        deps: Deps, admin: httpx.AsyncClient, clock: FakeClock) -> None:
    r = await admin.post("/api/v1/jobs/predict-success",
                         json={"jobType": "encode", "payload": {}})
    assert r.status_code == 404 and "train" in r.text  # nothing trained yet

    await _history(deps, clock, 4000, seed=1)
    await _fold_rollups(deps)  # what the relay does live: the last hour's failure rate
    t = await admin.post("/api/v1/ai/train", json={"days": 7})
    assert t.status_code == 200, t.text
    m, base = t.json()["model"], t.json()["baseline"]
    # one job type: its historical rate cannot rank attempts (AUC 0.5); the payload can
    assert base["rocAuc"] == pytest.approx(0.5, abs=0.01)
    assert m["rocAuc"] >= 0.85 and m["prAuc"] >= 2 * m["failureRate"]
    assert m["brier"] < base["brier"]
    row = await deps.pool.fetchrow("SELECT model, meta FROM ai_models WHERE kind <> $1",
                                   "retry_advisor")
    # the retry advisor trained in the same call, as JSON
    assert t.json()["retryAdvisor"]["kind"] == "retry_advisor"
    assert row["model"].startswith("tree")  # LightGBM's text format, not a pickle
    names = orjson.loads(row["meta"])["names"]
    assert "payload.videoSizeMb" in names and "payload.codec" in names
    assert not [n for n in names if "password" in n]  # masked payload keys are never features

    big = (await admin.post("/api/v1/jobs/predict-success", json={
        "jobType": "encode", "queue": "video",
        "payload": {"videoSizeMb": 5200, "codec": "h264", "title": "abc"}})).json()
    small = (await admin.post("/api/v1/jobs/predict-success", json={
        "jobType": "encode", "payload": {"videoSizeMb": 40, "codec": "h264", "title": "a"}}
    )).json()
    av1 = (await admin.post("/api/v1/jobs/predict-success", json={
        "jobType": "encode", "payload": {"videoSizeMb": 40, "codec": "av1", "title": "a"}}
    )).json()
    assert big["successProbability"] < 0.6 < 0.9 < small["successProbability"]
    assert av1["successProbability"] < 0.2
    assert any(x.startswith("payload.videoSizeMb = 5,200 lowers") for x in big["reasons"])
    assert any(s.startswith("payload.videoSizeMb above ~") and "split the job" in s
               for s in big["suggestions"])
    assert any("payload.codec = av1" in s for s in av1["suggestions"])
    assert big["model"]["version"] == 1 and big["model"]["rocAuc"] == m["rocAuc"]

    # a retry after a timeout: the previous error is a feature, and the advice is the timeout's
    retry = (await admin.post("/api/v1/jobs/predict-success", json={
        "jobType": "encode", "attempt": 2, "previousError": "TimeoutError",
        "payload": {"videoSizeMb": 5200, "codec": "h264", "title": "abc"}})).json()
    assert retry["successProbability"] > big["successProbability"]


async def test_bad_input_and_too_little_history_are_refused_naming_the_field(
        deps: Deps, admin: httpx.AsyncClient) -> None:
    r = await admin.post("/api/v1/ai/train", json={"days": 7})
    assert r.status_code in (400, 422) and "days" in r.text and "at least" in r.text
    r = await admin.post("/api/v1/ai/train", json={"days": 0})
    assert r.status_code in (400, 422) and "days" in r.text
    r = await admin.post("/api/v1/jobs/predict-success", json={"jobType": "x", "payload": []})
    assert r.status_code in (400, 422) and "payload" in r.text
    r = await admin.post("/api/v1/jobs/predict-success",
                         json={"jobType": "x", "payload": {}, "workerLoad": 2})
    assert r.status_code in (400, 422) and "workerLoad" in r.text


async def test_graphql_trains_and_predicts_like_rest(
        deps: Deps, admin: httpx.AsyncClient, clock: FakeClock) -> None:
    await _history(deps, clock, 1500, seed=2)
    await _fold_rollups(deps)
    t = (await admin.post("/graphql", json={"query": "mutation { trainModels(days: 3) }"})
         ).json()["data"]["trainModels"]
    assert t["version"] == 1 and t["model"]["rocAuc"] > t["baseline"]["rocAuc"]
    body = {"jobType": "encode", "payload": {"videoSizeMb": 4000, "codec": "vp9", "title": "t"}}
    rest = (await admin.post("/api/v1/jobs/predict-success", json=body)).json()
    q = """query($p: JSON!) { predictSuccess(jobType: "encode", payload: $p) {
             successProbability reasons suggestions model { version rocAuc } } }"""
    g = (await admin.post("/graphql", json={"query": q, "variables": {"p": body["payload"]}})
         ).json()["data"]["predictSuccess"]
    assert g["successProbability"] == rest["successProbability"]
    assert g["reasons"] == rest["reasons"] and g["suggestions"] == rest["suggestions"]
    assert g["model"] == {"version": 1, "rocAuc": rest["model"]["rocAuc"]}
