"""``bench/cluster.py`` runs small in every test run so it never rots (``make bench`` runs it at
full size): one Valkey node against a 3-master cluster, bare workers and the shipped stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# each starts its own stores, a cluster and worker processes: minutes on a busy machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
BENCH = Path(__file__).parent.parent / "bench"


@pytest.mark.parametrize("stack", ["workers", "shipped"])
def test_cluster_bench_runs_and_reports(tmp_path: Path, stack: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    r = subprocess.run([sys.executable, str(BENCH / "cluster.py"), "--jobs", "3000", "--runs",
                        "1", "--quick", "--stack", stack, "--configs", "single,cluster-3",
                        "--out", str(tmp_path)], env=env, timeout=800, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr[-2000:] + r.stdout[-2000:]
    rep = json.loads((tmp_path / "cluster-smoke.json").read_text())
    single, three = rep["results"]["single"], rep["results"]["cluster-3"]
    assert single["jobs_per_s"] > 0 and three["jobs_per_s"] > 0
    # one node is measured as one, the cluster as its three masters (a small run's per-node
    # CPU can fall under the kernel's 10 ms tick: the total cannot)
    assert len(single["valkey_us_per_job_by_node"]) == 1
    assert len(three["valkey_us_per_job_by_node"]) == 3
    assert three["valkey_us_per_job_total"] > 0
    assert three["workers_us_per_job"] > 0
    if stack == "shipped":
        assert {"workers", "relay", "postgres"} <= set(three["runs"][0]["stack_us_per_job"])
    assert (tmp_path / "cluster-smoke.md").read_text().startswith("# Redis Cluster")


def test_markdown_says_when_a_run_fell_under_one_cpu_tick() -> None:
    """CI once failed here: a 600-job run finished inside one 10 ms tick of every node's CPU
    counter, so there was no per-core projection to format."""
    sys.path.insert(0, str(BENCH))
    try:
        import cluster  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(BENCH))
    row = {"jobs_per_s": 5000.0, "valkey_us_per_job_total": 0.0,
           "valkey_us_per_job_by_node": [0.0], "workers_us_per_job": 80.0,
           "projected_jobs_per_s_per_core_of_busiest_node": None}
    md = cluster.markdown({"settings": {"jobs": 600, "queues": 8, "runs": 1, "processes": 2,
                                        "concurrency": 25},
                           "results": {"single": row}, "machine": {"load": (0, 0, 0)}})
    assert "| single | 5,000 | 0.0 | 0.0 | n/a (under one CPU tick) | 80 |" in md
