"""A total-queue checker in the spirit of Jepsen's: after the faults the system drains, then

* lost = acknowledged submissions (by their unique ``cid``) that are not ``completed`` in Postgres
  (missing rows count as lost too);
* duplicates = jobs whose ``job_attempts`` hold more than one ``completed`` outcome, plus
  completed jobs without one;
* attempts >= executions: the side effects a job's handler performed (effects.log, written by the
  handler itself) never exceed the attempts Postgres counted for it;
* recovery: every lease the reaper took back after a fault was taken back within
  lease + sweep (+ slack for a loaded 2-core machine), measured from the fault. That is a
  latency figure, so it is enforced only by ``make chaos`` (the measurement run that records
  docs/reliability.md, ``JOBLINE_CHAOS_RESULTS`` set); ``make test`` runs beside other load and
  judges correctness only.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from chaos.handlers import EFFECTS
from jobline.shared.platform.connections import Deps

#: Scheduling noise allowed on top of lease + sweep on a shared 2-core machine.
RECOVERY_SLACK_MS = 1_000


def now_ms() -> int:
    return int(time.time() * 1000)


def executions(home: Path) -> Counter[str]:
    f = home / EFFECTS
    if not f.exists():
        return Counter()
    return Counter(line.split()[0] for line in f.read_text().splitlines() if line)


@dataclass
class Verdict:
    jobs: int
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    over_executed: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    recovery_ms: list[int] = field(default_factory=list)

    @property
    def max_recovery_ms(self) -> int | None:
        return max(self.recovery_ms) if self.recovery_ms else None


async def check(deps: Deps, home: Path, acked: Iterable[str], *,
                faults_ms: Iterable[int] = (), may_cancel: bool = False) -> Verdict:
    """Judge the final state. ``acked``: cids whose submission was acknowledged; ``faults_ms``:
    wall-clock times of injected faults (recovery is measured from the latest one before each
    reap). ``may_cancel``: ``cancelled`` is an acceptable end (cancel-vs-complete races)."""
    rows = await deps.pool.fetch(
        """SELECT j.id, j.status, j.attempts, j.payload->>'cid' AS cid,
                  count(a.*) FILTER (WHERE a.outcome = 'completed') AS done
             FROM jobs j LEFT JOIN job_attempts a ON a.job_id = j.id
            GROUP BY j.id, j.status, j.attempts, j.payload""")
    by_cid: dict[str, list[dict[str, object]]] = {}
    for r in rows:
        by_cid.setdefault(str(r["cid"]), []).append(dict(r))
    ran = executions(home)
    acked = set(acked)
    v = Verdict(jobs=len(acked))
    ok_end = {"completed", "cancelled"} if may_cancel else {"completed"}
    for cid in sorted(acked):
        found = by_cid.get(cid, [])
        if not any(j["status"] in ok_end for j in found):
            v.lost.append(cid)
    for cid, found in by_cid.items():
        for j in found:
            done = int(j["done"])  # type: ignore[call-overload]
            if done > 1 or (j["status"] == "completed" and done != 1) or (
                    j["status"] == "cancelled" and done != 0):
                v.duplicates.append(cid)
            if j["status"] in ("processing", "pending", "scheduled"):
                v.stuck.append(cid)
        attempts = sum(int(j["attempts"]) for j in found)  # type: ignore[call-overload]
        if ran[cid] > attempts:
            v.over_executed.append(f"{cid}: {ran[cid]} executions > {attempts} attempts")
    faults = sorted(faults_ms)
    if faults:
        for r in await deps.pool.fetch(
                """SELECT (extract(epoch FROM finished_at) * 1000)::bigint AS at
                     FROM job_attempts WHERE outcome = 'lease_expired'"""):
            before = [f for f in faults if f <= r["at"]]
            if before:
                v.recovery_ms.append(int(r["at"] - before[-1]))
    return v


def assert_total_queue(v: Verdict, lease_ms: int, sweep_ms: int) -> None:
    assert v.lost == [], f"lost {len(v.lost)}: {v.lost[:10]}"
    assert v.duplicates == [], f"duplicate completions: {v.duplicates[:10]}"
    assert v.over_executed == [], v.over_executed[:10]
    assert v.stuck == [], f"not drained: {v.stuck[:10]}"
    if os.environ.get("JOBLINE_CHAOS_RESULTS"):
        bound = lease_ms + sweep_ms + RECOVERY_SLACK_MS
        assert all(ms <= bound for ms in v.recovery_ms), (max(v.recovery_ms), bound)


def record(scenario: str, v: Verdict, faults: str, **extra: object) -> None:
    """Append this run's figures for docs/reliability.md (``make chaos`` sets the file)."""
    out = os.environ.get("JOBLINE_CHAOS_RESULTS")
    if not out:
        return
    row = {"scenario": scenario, "jobs": v.jobs, "faults": faults, "lost": len(v.lost),
           "duplicates": len(v.duplicates), "max_recovery_ms": v.max_recovery_ms, **extra}
    with open(out, "a") as fh:
        fh.write(json.dumps(row) + "\n")


def summary(v: Verdict) -> dict[str, object]:
    return {k: val for k, val in asdict(v).items() if val}
