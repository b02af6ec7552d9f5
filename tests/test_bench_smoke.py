"""The benchmark suite runs small in every test run so it never rots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# each runs a benchmark in a subprocess that starts its own stores: on a busy machine that
# takes minutes, past the suite's 120 s per-test default
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
BENCH = Path(__file__).parent.parent / "bench" / "throughput.py"


def test_throughput_bench_runs_and_reports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    subprocess.run([sys.executable, str(BENCH), "--jobs", "300", "--runs", "1", "--quick",
                    "--out", str(tmp_path)], env=env, check=True, timeout=800,
                   capture_output=True)
    report = json.loads((tmp_path / "throughput-smoke.json").read_text())
    assert report["settings"]["durable"] is True
    for name, r in report["results"].items():
        assert r["median"] > 0, name
    assert (tmp_path / "throughput-smoke.md").read_text().startswith("# throughput-smoke")


def test_events_bench_runs_and_reports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    subprocess.run([sys.executable, str(BENCH.parent / "events.py"), "--quick", "--out",
                    str(tmp_path)], env=env, check=True, timeout=800, capture_output=True)
    report = json.loads((tmp_path / "events-smoke.json").read_text())
    for backend in ("redis", "kafka"):
        r = report["results"][backend]
        assert r["events_per_s"] > 0 and r["latency_ms"]["n"] == 20, backend
        assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p99"], backend
    assert (tmp_path / "events-smoke.md").read_text().startswith("# events-smoke")


def test_pg_ceiling_bench_runs_and_reports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    subprocess.run([sys.executable, str(BENCH.parent / "pg_ceiling.py"), "--rows", "600",
                    "--batch", "200", "--runs", "1", "--out", str(tmp_path)], env=env,
                   check=True, timeout=800, capture_output=True)
    report = json.loads((tmp_path / "pg_ceiling-smoke.json").read_text())
    assert set(report["results"]) == {"shipped", "no_outbox", "pkey_only"}
    for name, r in report["results"].items():
        assert r["rows_per_s"]["median"] > 0, name
        assert r["pg_cpu_us_per_row"] is None or r["pg_cpu_us_per_row"] >= 0, name
    assert (tmp_path / "pg_ceiling-smoke.md").read_text().startswith("# pg_ceiling-smoke")


def test_latency_breakdown_bench_runs_and_reports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    subprocess.run([sys.executable, str(BENCH.parent / "latency_breakdown.py"), "--n", "10",
                    "--out", str(tmp_path)], env=env, check=True, timeout=800,
                   capture_output=True)
    report = json.loads((tmp_path / "latency_breakdown-smoke.json").read_text())
    for label in ("warm", "cold"):
        for call, v in report["round_trips"][label].items():
            assert 0 < v["p50_ms"] <= v["p90_ms"], (label, call)
    path = report["idle_path"]
    for step in ("submit", "pg_claim", "total"):
        assert 0 < path[step]["p50_ms"] <= path[step]["p90_ms"], step
    # the worker's wake-up and Redis claim ride on the submit's enqueue: about when it returns
    assert abs(path["submit_end_to_redis_claimed"]["p50_ms"]) < path["total"]["p50_ms"]
    assert path["total"]["p50_ms"] >= path["pg_claim"]["p50_ms"]


def test_cpu_split_bench_runs_and_reports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    subprocess.run([sys.executable, str(BENCH.parent / "cpu_split.py"), "--jobs", "2000",
                    "--only", "bulk,process", "--out", str(tmp_path)], env=env, check=True,
                   timeout=800, capture_output=True)
    report = json.loads((tmp_path / "cpu_split-smoke.json").read_text())
    for workload in ("bulk", "process"):
        r = report["results"][workload]
        assert r["jobs"] == 2000 and r["jobs_per_s"] > 0, workload
        assert r["cpu_us_per_job"]["postgres"] > 0, workload
        assert r["ceiling_jobs_per_s_on_2_cores"] > 0, workload
    assert report["results"]["process"]["cpu_us_per_job"]["workers"] > 0


def test_queue_stats_bench_runs_and_reports(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(BENCH.parent / "queue_stats.py"), "--quick", "--out",
                    str(tmp_path)], check=True, timeout=800, capture_output=True)
    report = json.loads((tmp_path / "queue_stats-smoke.json").read_text())
    # the script itself asserts the counts equal a GROUP BY over jobs at every size
    assert [v["jobs"] for v in report["reads"].values()] == [2_000, 5_000]
    for v in report["reads"].values():
        for when in ("before", "after"):
            for what in ("counts", "queue_stats", "http"):
                assert 0 < v[when][what]["p50_ms"] <= v[when][what]["p95_ms"], (when, what)
    w = report["writes"]
    assert w["on"]["submit_median"] > 0 and w["off"]["claim_complete_median"] > 0
    assert report["unfolded"]["500"]["folded_rows"] == 500
    assert (tmp_path / "queue_stats-smoke.md").read_text().startswith("# Queue stats")


def test_workers_bench_runs_and_reports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    subprocess.run([sys.executable, str(BENCH.parent / "workers.py"), "--runs", "1",
                    "--bursts", "1", "--burst-jobs", "100", "--idle-s", "2",
                    "--fleet-step-ms", "500", "--out", str(tmp_path)],
                   env=env, check=True, timeout=800, capture_output=True)
    report = json.loads((tmp_path / "workers.json").read_text())
    assert report["scale_request_to_claim"]["all_new_claim_s"]["median"] > 0
    assert report["backlog_spike_to_scale_up"]["desired_rises_s"]["median"] >= 0
    assert report["worker_hours"]["autoscaled_over_fixed"] > 0
    assert (tmp_path / "workers.md").read_text().startswith("# workers")


def test_rollup_fold_bench_runs_and_reports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    subprocess.run([sys.executable, str(BENCH.parent / "rollup_fold.py"), "--runs", "1",
                    "--passes", "20", "--out", str(tmp_path)], env=env, check=True,
                   timeout=800, capture_output=True)
    report = json.loads((tmp_path / "rollup_fold.json").read_text())
    for mode in ("compacted", "all grains"):
        (run,) = report["results"][mode]
        assert run["passes"] == 20 and run["events"] > 0, mode
        assert report["median"][mode]["events_per_s"] > 0, mode
    # the compacted mode compacted its minute; the other wrote every grain instead
    assert report["results"]["compacted"][0]["compaction_ms"] > 0
    assert report["results"]["all grains"][0]["compaction_ms"] == 0
    assert report["rows_per_minute"]["job_rollup_histograms"] > 0
    assert (tmp_path / "rollup_fold.md").read_text().startswith("# Rollup fold capacity")


def test_index_sort_bench_runs_and_reports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    out = tmp_path / "index_sort.json"
    subprocess.run([sys.executable, str(BENCH.parent / "index_sort.py"), "--rows", "20k",
                    "--mem", "4MB,1MB", "--repeat", "2", "--out", str(out)], env=env,
                   check=True, timeout=800, capture_output=True)
    report = json.loads(out.read_text())
    assert report["rows"] == 20_000 and report["repeat"] == 2
    for mem in ("4MB", "1MB"):
        for index in ("status_id", "type_id"):
            runs = report["seconds"][mem][index]
            assert len(runs) == 2 and all(s > 0 for s in runs), (mem, index)
