"""The small version of every scenario of the benchmark suite (``make bench`` runs the full one),
so the suite never rots. One subprocess run, well under a minute; peers are only in ``make bench``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# each runs a benchmark in a subprocess that starts its own stores: on a busy machine that
# takes minutes, past the suite's 120 s per-test default
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
BENCH = Path(__file__).parent.parent / "bench"
SCENARIOS = ["submit", "http", "process", "steady", "idle_latency", "backlog", "delayed", "dlq",
             "crash"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("suite")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    r = subprocess.run([sys.executable, str(BENCH / "suite.py"), "--small", "--runs", "1",
                        "--only", ",".join(SCENARIOS), "--out", str(out)],
                       env=env, timeout=800, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    rep: dict[str, Any] = json.loads((out / "suite-smoke.json").read_text())
    rep["_md"] = (out / "suite-smoke.md").read_text()
    return rep


def med(report: dict[str, Any], scenario: str, metric: str) -> float:
    return float(report["scenarios"][scenario][metric]["median"])


def test_every_scenario_reports_without_errors(report: dict[str, Any]) -> None:
    assert report["errors"] == {}
    assert set(report["scenarios"]) == set(SCENARIOS)
    assert report["settings"]["durable"] is True
    assert report["versions"]["postgresql"] and report["versions"]["valkey"]
    assert report["machine"]["cpus"] >= 1
    assert report["_md"].startswith("# suite-smoke")
    for scenario in SCENARIOS:
        assert f"| {scenario} |" in report["_md"]


def test_submit_and_processing_rates_are_positive(report: dict[str, Any]) -> None:
    for metric in ("sequential_jobs_per_s", "concurrent_single_jobs_per_s", "bulk_jobs_per_s",
                   "bulk_2_streams_jobs_per_s"):
        assert med(report, "submit", metric) > 0, metric
    assert med(report, "process", "jobs_per_s_2x25") > 0
    assert med(report, "http", "saturation_achieved_per_s") > 0
    assert med(report, "http", "bulk_1000_per_request_jobs_per_s") > 0
    # how close the fixed-rate run gets to its offered rate is the full run's figure: beside
    # other load the smoke run only shows that it ran
    assert med(report, "http", "200_per_s_achieved_per_s") > 0
    assert 0 < med(report, "http", "200_per_s_p50_ms") <= med(report, "http", "200_per_s_p99_ms")


def test_latency_scenarios_are_ordered_and_bounded(report: dict[str, Any]) -> None:
    assert 0 < med(report, "idle_latency", "p50_ms") <= med(report, "idle_latency", "p99_ms")
    assert 0 <= med(report, "delayed", "lateness_p50_ms") <= med(report, "delayed",
                                                                   "lateness_p99_ms")
    assert med(report, "delayed", "started_early") == 0
    assert med(report, "steady", "normal_latency_p50_ms") <= med(report, "steady",
                                                                  "normal_latency_p99_ms")
    assert report["scenarios"]["steady"]["normal_backlog_series"]["runs"][0]


def test_backlog_dlq_and_crash(report: dict[str, Any]) -> None:
    assert med(report, "backlog", "jobs") == 3_000
    # a pending job is one sorted-set member in Redis: far below the 250-byte budget
    assert 0 < med(report, "backlog", "redis_bytes_per_pending_job") <= 250
    assert med(report, "backlog", "drain_jobs_per_s") > 0
    assert med(report, "dlq", "jobs") == 200 and med(report, "dlq", "retry_s") > 0
    # SIGKILL of half the workers under load loses nothing
    assert med(report, "crash", "lost") == 0
    assert med(report, "crash", "submitted") > 0
