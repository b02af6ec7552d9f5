"""Print the chaos results (JSON lines written by checker.record) as the docs/reliability.md table."""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    with open(path) as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    print("| Scenario | Jobs | Faults | Lost | Duplicates | Max recovery |")
    print("|---|---:|---|---:|---:|---:|")
    for r in rows:
        rec = r["max_recovery_ms"]
        print(f"| {r['scenario']} | {r['jobs']} | {r['faults']} | {r['lost']} | "
              f"{r['duplicates']} | {'-' if rec is None else f'{rec} ms'} |")


if __name__ == "__main__":
    main(sys.argv[1])
