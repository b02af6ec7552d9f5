"""Cold-start import time of each Lambda handler module.

A Lambda cold start pays for importing the handler's module (init phase) and then, on the first
invocation, for what the handler imports lazily (its app, the drivers). Each handler is measured
in fresh interpreters (best of ``--runs``: the machine is shared and noisy), and the heaviest
packages come from ``python -X importtime``. Results: ``bench/results/coldstart.{json,md}``.

    python bench/coldstart.py               # full (7 runs each)
    python bench/coldstart.py --runs 1 --out /tmp/x   # smoke (the test suite runs this)
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
HANDLERS = ["submit", "claim", "complete", "retry", "cron_tick", "http"]
#: What each handler's first invocation imports lazily (building its app, connecting): the
#: import of the handler module is only the init phase; these complete the cold start.
FIRST_CALL = {
    "submit": ["jobline.shared.platform.connections", "jobline.api.jobs", "mangum", "starlette.applications"],
    "claim": ["jobline.shared.platform.connections", "jobline.api.worker_routes", "mangum",
              "starlette.applications"],
    "complete": ["jobline.shared.platform.connections", "jobline.api.worker_routes", "mangum",
                 "starlette.applications"],
    "retry": ["jobline.shared.platform.connections", "jobline.api.jobs", "mangum", "starlette.applications"],
    "cron_tick": ["jobline.shared.platform.connections", "jobline.shared.core.maintenance", "uvloop"],
    "http": ["jobline.shared.platform.connections", "jobline.api.app", "mangum"],
}
_PROBE = """
import importlib, json, sys, time
t0 = time.perf_counter()
importlib.import_module(sys.argv[1])
t1 = time.perf_counter()
for m in sys.argv[2:]:
    importlib.import_module(m)
t2 = time.perf_counter()
print(json.dumps([(t1 - t0) * 1000, (t2 - t1) * 1000]))
"""
#: "import time: self [us] | cumulative | imported package"
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def measure(handler: str) -> tuple[float, float]:
    """(ms to import the handler module, ms of the imports its first invocation adds)."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, f"jobline.functions.{handler}",
                           *FIRST_CALL[handler]], capture_output=True, text=True, check=True)
    init_ms, first_ms = json.loads(proc.stdout)
    return init_ms, first_ms


def heaviest(handler: str, n: int = 6) -> list[tuple[str, float]]:
    """The heaviest top-level packages imported over the whole cold start (cumulative ms)."""
    code = "; ".join(f"import {m}" for m in [f"jobline.functions.{handler}", *FIRST_CALL[handler]])
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                          capture_output=True, text=True, check=True)
    tops: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        m = _LINE.match(line)
        if m:
            root = m.group(4).split(".")[0]
            if root not in ("encodings", "site", "_frozen_importlib_external", "io"):
                tops[root] = max(tops.get(root, 0.0), int(m.group(2)) / 1000)
    return sorted(tops.items(), key=lambda t: -t[1])[:n]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    results: dict[str, Any] = {}
    for h in HANDLERS:
        runs = [measure(h) for _ in range(args.runs)]
        totals = [i + f for i, f in runs]
        best = min(range(len(runs)), key=lambda k: totals[k])
        results[h] = {"init_ms": round(runs[best][0], 1), "first_call_ms": round(runs[best][1], 1),
                      "total_best_ms": round(totals[best], 1),
                      "total_median_ms": round(statistics.median(totals), 1),
                      "heaviest_imports_ms": [[n, round(ms, 1)] for n, ms in heaviest(h)]}
    report = {"python": platform.python_version(), "runs": args.runs, "handlers": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "coldstart.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# coldstart", "",
             f"Import cost of each Lambda handler's cold start, Python {report['python']}, best "
             f"of {args.runs} fresh interpreters: `init` = importing the handler module (Lambda's "
             "init phase), `first call` = the modules its first invocation imports lazily "
             "(app, drivers). Connecting is not included (network-bound).", "",
             "| handler | init ms | first call ms | total best ms | total median ms "
             "| heaviest packages (cumulative ms) |", "|---|---|---|---|---|---|"]
    for h, r in results.items():
        heavy = ", ".join(f"{n} {ms}" for n, ms in r["heaviest_imports_ms"])
        lines.append(f"| {h} | {r['init_ms']} | {r['first_call_ms']} | {r['total_best_ms']} "
                     f"| {r['total_median_ms']} | {heavy} |")
    (args.out / "coldstart.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
