"""Monitoring: the seed's /api/v1/metrics endpoints, the same figures through GraphQL, and the
Prometheus /metrics exposition, all fed by the rollups the relay folds."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobline.analytics import rollups
from jobline.analytics.fold import make_fold
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome
from jobline.shared.events import worker_events
from jobline.shared.events.bus import EventBus
from jobline.shared.events.buses import create_bus
from jobline.shared.events.outbox import relay_once
from jobline.shared.platform.clock import FakeClock, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.security import auth

DASHBOARD = Path(__file__).resolve().parent.parent / "infra/grafana/dashboards/jobline.json"
T0 = 1_800_000_000_000  # a whole minute


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def bus(deps: Deps) -> AsyncIterator[EventBus]:
    b = await create_bus(deps.settings)
    yield b
    await b.close()


async def run(deps: Deps, clock: FakeClock, queue: str, ok: bool, wait: int, dur: int) -> None:
    await jobs.submit(deps, JobSpec(queue, "t", {}, max_attempts=1))
    clock.advance(wait)
    (c,) = await jobs.claim(deps, "w", [queue], 1)
    clock.advance(dur)
    if ok:
        await jobs.complete(deps, [Outcome(c.id, c.token, True, None)])
    else:
        await jobs.fail(deps, [Outcome(c.id, c.token, False, error="x", error_type="X")],
                        [c.attempt])


async def fill_rollups(deps: Deps, bus: EventBus, expected: int) -> None:
    fold = make_fold(deps)
    relayed = 0
    while n := await relay_once(deps, bus, fold=fold):
        relayed += n
    assert relayed >= expected


@pytest.fixture
async def history(deps: Deps, bus: EventBus, clock: FakeClock) -> None:
    # 3 completed (100, 200, 3000 ms) and 1 dead-lettered job on "mq"; 1 completed on "nq"
    for ok, dur in ((True, 100), (True, 200), (True, 3000), (False, 50)):
        await run(deps, clock, "mq", ok, 10, dur)
    await run(deps, clock, "nq", True, 10, 5)
    await jobs.submit(deps, JobSpec("mq", "t", {}))  # still pending
    # events: mq 5 submitted + 4 started + 3 completed + failed/dead_letter; nq 3
    await fill_rollups(deps, bus, 5 + 4 + 3 + 2 + 3)
    clock.advance(60_000)


GQL_QUEUES = """{ queueMetrics(queue: "mq") { name ready throughputPerMin failureRate
    oldestPendingAgeMs health avgDurationMs } }"""


async def test_queue_metrics_rest_and_graphql_agree(admin: httpx.AsyncClient,
                                                    history: None) -> None:
    r = await admin.get("/api/v1/metrics/queues", params={"queue": "mq"})
    assert r.status_code == 200, r.text
    (mq,) = r.json()["queues"]
    assert mq["ready"] == 1 and mq["name"] == "mq"
    assert mq["failureRate"] == 0.25  # 1 failed attempt of 4
    assert mq["avgDurationMs"] == pytest.approx((100 + 200 + 3000) / 3, abs=0.1)
    assert mq["oldestPendingAgeMs"] == 60_000
    assert mq["health"] == "healthy"
    g = await admin.post("/graphql", json={"query": GQL_QUEUES})
    (gq,) = g.json()["data"]["queueMetrics"]
    assert gq == {k: mq[k] for k in gq}  # one implementation underneath
    allq = (await admin.get("/api/v1/metrics/queues")).json()["queues"]
    assert {q["name"] for q in allq} >= {"mq", "nq"}


async def test_duration_histogram_and_throughput_come_from_rollups(
        admin: httpx.AsyncClient, history: None, deps: Deps) -> None:
    # the rollups are the source: emptying jobs does not change the figures
    await deps.pool.execute("DELETE FROM job_attempts; DELETE FROM jobs")
    r = await admin.get("/api/v1/metrics/job-duration-histogram", params={"queue": "mq"})
    h = r.json()
    assert h["total"] == 3
    assert [(b["lowerMs"], b["upperMs"], b["count"]) for b in h["buckets"]] == [
        (100, 104, 1), (198, 205, 1), (2899, 3014, 1)]  # buckets span <= 4% (sketch.py)
    assert abs(h["p50Ms"] - 200) <= 0.02 * 200
    w = (await admin.get("/api/v1/metrics/job-duration-histogram",
                         params={"queue": "mq", "metric": "wait"})).json()
    assert w["total"] == 4
    s = (await admin.get("/api/v1/metrics/throughput", params={"queue": "mq"})).json()["series"]
    assert sum(p["completed"] for p in s) == 3 and sum(p["deadLetter"] for p in s) == 1
    g = await admin.post("/graphql", json={"query": """{
        durationHistogram(queue: "mq") { total p50Ms buckets { count } }
        throughputSeries(queue: "mq") { completed } }"""})
    data = g.json()["data"]
    assert data["durationHistogram"]["total"] == 3 and abs(data["durationHistogram"]["p50Ms"] - 200) <= 4
    assert sum(p["completed"] for p in data["throughputSeries"]) == 3
    bad = await admin.get("/api/v1/metrics/job-duration-histogram", params={"metric": "nope"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "metric"


async def test_timeline_pages_jobs_of_a_window(admin: httpx.AsyncClient, deps: Deps,
                                               clock: FakeClock, history: None) -> None:
    before = clock.now_ms()
    for _ in range(3):
        await run(deps, clock, "tq", True, 1, 40)
    params = {"from": str(before), "to": str(clock.now_ms() + 1), "queue": "tq", "limit": "2"}
    p1 = (await admin.get("/api/v1/metrics/jobs/timeline", params=params)).json()
    assert len(p1["jobs"]) == 2 and p1["nextCursor"]
    p2 = (await admin.get("/api/v1/metrics/jobs/timeline",
                          params={**params, "cursor": p1["nextCursor"]})).json()
    items = p1["jobs"] + p2["jobs"]
    assert len(items) == 3 and p2["nextCursor"] is None
    assert all(i["durationMs"] == 40 and i["status"] == "completed" for i in items)
    assert [i["startMs"] for i in items] == sorted(i["startMs"] for i in items)
    none = (await admin.get("/api/v1/metrics/jobs/timeline",
                            params={"from": str(T0 - 600_000), "to": str(T0 - 1)})).json()
    assert none["jobs"] == []
    for bad, field in (({"from": "yesterday"}, "from"), ({"from": "5", "to": "4"}, "to"),
                       ({"limit": "0"}, "limit"), ({"bogus": "1"}, "bogus")):
        r = await admin.get("/api/v1/metrics/jobs/timeline", params=bad)
        status = 400 if bad == {"bogus": "1"} else 422  # an unknown parameter is a 400
        assert r.status_code == status and r.json()["error"]["field"] == field, (bad, r.text)
    g = await admin.post("/graphql", json={"query": """query($f: DateTime) {
        jobTimeline(from: $f, queue: "tq") { items { durationMs } } }""",
                                           "variables": {"f": "2027-01-15T08:00:00Z"}})
    assert [i["durationMs"] for i in g.json()["data"]["jobTimeline"]["items"]] == [40] * 3


async def test_workers_endpoint_and_role(admin: httpx.AsyncClient, deps: Deps) -> None:
    await deps.dispatch.r.sadd(f"{deps.dispatch.prefix}:workers", "w9")
    import orjson

    info = {"id": "w9", "queues": ["a"], "concurrency": 4, "running": 1, "currentJobs": ["j"],
            "startedMs": T0 - 5000, "lastSeenMs": T0, "processed": 7, "failed": 1}
    await deps.dispatch.r.set(f"{deps.dispatch.prefix}:worker:w9", orjson.dumps(info), px=60_000)
    (w,) = (await admin.get("/api/v1/metrics/workers")).json()["workers"]
    assert (w["status"], w["uptimeMs"], w["processed"]) == ("busy", 5000, 7)
    _, dev = await auth.create_key(deps, "developer", "dev")
    for path in ("/api/v1/metrics/workers", "/api/v1/metrics/queues", "/metrics"):
        assert (await admin.get(path, headers={"X-Api-Key": dev})).status_code == 403


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


async def test_prometheus_exposition(admin: httpx.AsyncClient, deps: Deps, history: None) -> None:
    await worker_events.worker_started(deps, "w1", {})
    r = await admin.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    fam = families(r.text)

    def sample(name: str, metric: str, **labels: str) -> float:
        for s in fam[name].samples:
            if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
        raise AssertionError(f"no {metric} {labels}")

    assert sample("jobline_jobs", "jobline_jobs_total", queue="mq", job_type="t",
                  status="completed") == 3
    assert sample("jobline_jobs", "jobline_jobs_total", queue="mq", job_type="t",
                  status="dead_letter") == 1
    assert sample("jobline_dead_letter", "jobline_dead_letter_total", queue="mq") == 1
    assert sample("jobline_retries", "jobline_retries_total", queue="mq") == 0
    assert sample("jobline_job_duration_seconds", "jobline_job_duration_seconds_count",
                  queue="mq") == 3
    assert sample("jobline_job_duration_seconds", "jobline_job_duration_seconds_bucket",
                  queue="mq", le="0.256") == 2
    assert sample("jobline_job_duration_seconds", "jobline_job_duration_seconds_sum",
                  queue="mq") == pytest.approx(3.3)
    assert sample("jobline_job_wait_seconds", "jobline_job_wait_seconds_count", queue="mq") == 4
    assert sample("jobline_queue_depth", "jobline_queue_depth", queue="mq", state="ready") == 1
    assert sample("jobline_event_outbox_pending", "jobline_event_outbox_pending") == 1
    assert "jobline_event_consumer_lag" in fam and "jobline_workers" in fam


@pytest.fixture
async def watermark_at_t0(deps: Deps) -> None:
    await deps.pool.execute("UPDATE rollup_watermark SET compacted_through = $1", to_dt(T0))


async def test_prometheus_counters_count_minutes_not_compacted_yet(
        admin: httpx.AsyncClient, deps: Deps, watermark_at_t0: None, history: None) -> None:
    """The all-time counters read the day rows plus the minutes after the compaction watermark
    (migration 0030): the same totals before the closed minutes are compacted and after."""

    async def totals() -> tuple[float, float, float]:
        fam = families((await admin.get("/metrics")).text)
        done = [s.value for s in fam["jobline_jobs"].samples if s.labels["queue"] == "mq"
                and s.labels["status"] == "completed"]
        count = [s.value for s in fam["jobline_job_duration_seconds"].samples
                 if s.name.endswith("_count") and s.labels["queue"] == "mq"]
        return sum(done), sum(count), await deps.pool.fetchval(
            "SELECT coalesce(sum(completed), 0) FROM job_rollups_day")

    assert await totals() == (3, 3, 0)  # nothing in the day rows yet
    await rollups.compact_now(deps.pool, T0 + 10 * 60_000)
    assert await totals() == (3, 3, 4)  # mq's 3 and nq's 1, all compacted now


async def test_prometheus_histograms_share_one_bucket_set_and_attempts_are_apart(
        admin: httpx.AsyncClient, history: None) -> None:
    """histogram_quantile over a sum of series is only right when every series has the same
    ``le`` set; attempts (a job may have several) are not jobs."""
    fam = families((await admin.get("/metrics")).text)
    for name in ("jobline_job_duration_seconds", "jobline_job_wait_seconds"):
        les: dict[tuple[str, str], list[str]] = {}
        for s in fam[name].samples:
            if s.name.endswith("_bucket"):
                les.setdefault((s.labels["queue"], s.labels["job_type"]), []).append(s.labels["le"])
        assert len(les) >= 2, les
        assert len({tuple(v) for v in les.values()}) == 1, les
    statuses = {s.labels["status"] for s in fam["jobline_jobs"].samples}
    assert statuses == {"submitted", "completed", "dead_letter", "cancelled"}
    outcomes = {s.labels["outcome"]: s.value for s in fam["jobline_attempts"].samples
                if s.labels["queue"] == "mq"}
    assert set(outcomes) == {"started", "failed"} and outcomes["started"] > 0


async def test_grafana_dashboard_uses_only_exported_metrics(admin: httpx.AsyncClient,
                                                            history: None) -> None:
    dash = json.loads(DASHBOARD.read_text())
    exported = set()
    for f in families((await admin.get("/metrics")).text).values():
        exported |= {s.name for s in f.samples} | {f.name}
    used = {m for p in dash["panels"] for t in p["targets"]
            for m in re.findall(r"\bjobline_[a-z_]+", t["expr"])}
    assert used and used <= exported, used - exported
