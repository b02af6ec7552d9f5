"""Top issues (issue 17): candidates computed from the stored history (dead-letter groups through
the real engine, rollups with known values, an anomaly episode row, a queue SLA), ranked by jobs
at stake; each kind appears exactly when its condition holds; bad input is a 4xx naming the
field. Slow-job suggestions gain the p95-growth advice."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
import pytest
from test_analytics_api import HOUR, MIN, T0, Store, iso

from jobline.analytics import query as aq
from jobline.analytics.ai import top_issues as ti
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome
from jobline.shared.observe import sketch
from jobline.shared.platform.clock import FakeClock, to_dt
from jobline.shared.platform.connections import Deps


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


async def dead_letters(deps: Deps, n: int, *, queue: str = "dq", job_type: str = "export",
                       payload: dict[str, Any] | None = None,
                       error: str = "upstream returned 500 for request 42") -> list[uuid.UUID]:
    """``n`` jobs dead-lettered through the real path (one attempt each)."""
    subs = await jobs.submit_many(deps, [JobSpec(queue=queue, job_type=job_type,
                                                 payload=payload or {"i": i}, max_attempts=1)
                                         for i in range(n)])
    claimed = await jobs.claim(deps, "w", [queue], n)
    assert len(claimed) == n
    await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error=error, error_type="HTTPError",
                                   final=True) for c in claimed])
    return [s.submitted.id for s in subs]


async def anomaly_row(deps: Deps, queue: str, detected: int, ended: int | None) -> None:
    await deps.pool.execute(
        "INSERT INTO ai_anomalies (queue_name, metric, detected_at, last_seen_at, ended_at, "
        "current_value, baseline, score, peak_score, possible_causes) VALUES ($1, "
        "'failure_rate', $2, $2, $3, 0.4, 0.02, 9.5, 11.0, $4::jsonb)", queue, to_dt(detected),
        to_dt(ended) if ended is not None else None,
        orjson.dumps({"causes": ["ValueError in parse: 30 failures in 5 min"]}).decode())


async def attempts(deps: Deps, at: int, queue: str, jt: str,
                   rows: list[tuple[int, int, int]]) -> None:
    """Attempt rollups at every grain (a read takes whole hours and days from the coarser)."""
    for table, col, grain in (("job_rollup_attempts", "minute", MIN),
                              ("job_rollup_attempts_hour", "at", HOUR),
                              ("job_rollup_attempts_day", "at", 24 * HOUR)):
        await deps.pool.executemany(
            f"INSERT INTO {table} ({col}, queue_name, job_type, attempt, completed, failed) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            [(to_dt(at // grain * grain), queue, jt, a, c, f) for a, c, f in rows])


async def sla_queue(deps: Deps, queue: str, target_ms: int) -> None:
    await jobs.submit(deps, JobSpec(queue, "noop", {}))  # the queue exists
    await aq.set_queue_sla(deps, queue, 0.95, target_ms, "e2e")


FROM, TO = T0 - 2 * HOUR, T0 + MIN  # previous period: [T0 - 4h - 1 min, T0 - 2h)


async def history(deps: Deps) -> None:
    """One of each kind, with distinct jobs at stake: slow 47.5 > SLA 30 > dead letters 20 >
    retry storm 12 > anomaly 5."""
    st = Store()
    st.add(T0 - 3 * HOUR, "mq", "slowt", durations=[100] * 50)  # baseline p95 100 ms
    st.add(T0 - HOUR, "mq", "slowt", durations=[1000] * 50)  # now 10x: 50 - 2.5 beyond it
    st.add(T0 - HOUR, "slaq", "render", e2e=[5000] * 30 + [100] * 70)  # 70% within 1 s
    st.add(T0 - 25 * MIN, "aq", "parse", durations=[10] * 5)  # finished during the episode
    await st.write(deps)
    await sla_queue(deps, "slaq", 1000)
    await attempts(deps, T0 - HOUR, "rq", "storm", [(1, 5, 20), (2, 1, 8), (3, 0, 4)])
    await anomaly_row(deps, "aq", T0 - 30 * MIN, T0 - 10 * MIN)
    await dead_letters(deps, 20)


async def test_each_kind_is_found_and_ranked_by_jobs_at_stake(deps: Deps) -> None:
    await history(deps)
    out = (await ti.top_issues(deps, FROM, TO, limit=10))["issues"]
    assert [(i["kind"], i["impactJobs"]) for i in out] == [
        ("slow_job_type", 47.5), ("sla", 30.0), ("dead_letters", 20.0), ("retry_storm", 12.0),
        ("anomaly", 5.0)]
    slow, sla, dlq, storm, anomaly = out
    assert (slow["queue"], slow["jobType"]) == ("mq", "slowt")
    ratio = sketch.representative(sketch.bucket(1000)) / sketch.representative(sketch.bucket(100))
    assert f"{ratio:.1f}x its previous-period p95" in slow["detail"]
    over = 30 * (sketch.representative(sketch.bucket(5000)) - 1000) / MIN
    assert sla["impactSlaMinutes"] == pytest.approx(over, abs=0.05)
    assert sla["link"] == "/analytics/sla?queue=slaq"
    assert "70.0%" in sla["detail"]
    assert dlq["link"] == "/dead-letters?jobType=export" and "HTTPError" in dlq["title"]
    assert storm["link"] == "/analytics/retries?queue=rq&jobType=storm"
    assert "12 of 13 retries" in storm["detail"]
    assert anomaly["queue"] == "aq" and "ValueError in parse" in anomaly["detail"]
    assert not any(i["narrated"] for i in out)  # no LLM configured: the computed text
    for i in out:
        assert i["impactSlaMinutes"] == 0 or i["kind"] == "sla"


async def test_rest_and_graphql_return_the_top_three(deps: Deps,
                                                     admin: httpx.AsyncClient) -> None:
    await history(deps)
    r = await admin.get("/api/v1/ai/top-issues", params={"from": str(FROM), "to": iso(TO)})
    assert r.status_code == 200, r.text
    issues = r.json()["issues"]
    assert [i["kind"] for i in issues] == ["slow_job_type", "sla", "dead_letters"]
    assert set(issues[0]) == {"kind", "title", "detail", "queue", "jobType", "impactJobs",
                              "impactSlaMinutes", "link", "narrated"}
    g = await admin.post("/graphql", json={"query": (
        f"{{ aiTopIssues(fromMs: {FROM}, toMs: {TO}) {{ issues {{ kind title detail queue "
        "jobType impactJobs impactSlaMinutes link narrated } } }")})
    body = g.json()
    assert "errors" not in body, body
    assert body["data"]["aiTopIssues"]["issues"] == issues


async def test_near_misses_are_not_issues(deps: Deps) -> None:
    """Each condition just short of its threshold: nothing to report."""
    lo, hi = T0 - 3 * HOUR, T0 - HOUR  # previous period [T0 - 5h, T0 - 3h)
    st = Store()
    st.add(T0 - 4 * HOUR, "mq", "slowt", durations=[100] * 50)
    st.add(T0 - 2 * HOUR, "mq", "slowt", durations=[150] * 50)  # 1.5x, under SLOW_RATIO
    st.add(T0 - 2 * HOUR, "slaq", "render", e2e=[5000] * 3 + [100] * 97)  # 97% >= 95%
    st.add(T0 - 2 * HOUR, "to", "t", durations=[10] * 30, failed=ti.TIMEOUT_MIN - 1,
           error_type="TimeoutError")
    await st.write(deps)
    await sla_queue(deps, "slaq", 1000)
    await attempts(deps, T0 - 2 * HOUR, "rq", "storm", [(2, 1, ti.STORM_MIN - 1)])  # too few
    await attempts(deps, T0 - 2 * HOUR, "rq", "mild", [(2, 30, 20)])  # 40% fail again
    await anomaly_row(deps, "aq", T0 - 30 * MIN, None)  # after the range
    await dead_letters(deps, 5)  # dead at T0, after the range
    assert (await ti.top_issues(deps, lo, hi, limit=10))["issues"] == []
    # timeouts alone make a slow job type once they reach the threshold
    st2 = Store()
    st2.add(T0 - 2 * HOUR, "to", "t5", failed=ti.TIMEOUT_MIN, error_type="TimeoutError")
    await st2.write(deps)
    (slow,) = (await ti.top_issues(deps, lo, hi, limit=10))["issues"]
    assert (slow["kind"], slow["jobType"], slow["impactJobs"]) == ("slow_job_type", "t5", 5.0)
    assert "5 attempts timed out" in slow["detail"]


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "yesterday"}, "from"),
    ({"to": "2027-13-01"}, "to"),
    ({"from": str(T0), "to": str(T0 - HOUR)}, "from"),
    ({"from": "-5"}, "from"),
    ({"fromMs": "1"}, "fromMs"),
])
async def test_bad_input_is_a_400_naming_the_field(admin: httpx.AsyncClient,
                                                   params: dict[str, str], field: str) -> None:
    r = await admin.get("/api/v1/ai/top-issues", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field


async def test_graphql_bad_input_names_the_field(admin: httpx.AsyncClient) -> None:
    g = await admin.post("/graphql", json={"query": f"{{ aiTopIssues(fromMs: {T0}, toMs: "
                                                    f"{T0 - HOUR}) {{ issues {{ kind }} }} }}"})
    (err,) = g.json()["errors"]
    assert err["extensions"] == {"code": "BAD_USER_INPUT", "field": "fromMs"}
    g = await admin.post("/graphql", json={"query": "{ aiTopIssues(fromMs: -1) { issues "
                                                    "{ kind } } }"})
    assert g.json()["errors"][0]["extensions"]["field"] == "fromMs"


async def test_developers_may_not_read_top_issues(deps: Deps) -> None:
    from jobline.api.app import create_app
    from jobline.testing import serve_app

    async for dev in serve_app(create_app(deps.settings, deps=deps), role="developer"):
        r = await dev.get("/api/v1/ai/top-issues")
        assert r.status_code == 403, r.text


async def test_slow_jobs_suggest_from_p95_growth(deps: Deps, admin: httpx.AsyncClient) -> None:
    st = Store()
    st.add(T0 - 3 * HOUR, "mq", "grew", durations=[100] * 40)
    st.add(T0 - HOUR, "mq", "grew", durations=[400] * 40)
    st.add(T0 - 3 * HOUR, "mq", "flat", durations=[100] * 40)
    st.add(T0 - HOUR, "mq", "flat", durations=[110] * 40)
    await st.write(deps)
    r = await admin.get("/api/v1/analytics/slow-jobs",
                        params={"from": iso(FROM), "to": iso(TO)})
    assert r.status_code == 200, r.text
    rows = {t["jobType"]: t for t in r.json()}
    grew = " | ".join(rows["grew"]["suggestions"])
    ratio = sketch.representative(sketch.bucket(400)) / sketch.representative(sketch.bucket(100))
    assert f"p95 grew {ratio:.1f}x since the previous period" in grew
    assert rows["flat"]["suggestions"] == []
