"""``jobline jobs|queues|dlq``: against the test's real stores, through ``main(argv)`` (run in a
thread: the CLI starts its own event loop) and, for ``--help``, a real subprocess."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest

from jobline.cli import build_parser, main
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps


@pytest.fixture(autouse=True)
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.database_url and settings.redis_url
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("JOBLINE_REDIS_PREFIX", settings.redis_prefix)
    monkeypatch.setenv("JOBLINE_HOME", str(settings.home))


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


async def dead_letter(deps: Deps, queue: str, error: str = "boom") -> uuid.UUID:
    [s] = await jobs.submit_many(deps, [JobSpec(queue=queue, job_type="t", payload={"k": 1})])
    [c] = [c for c in await jobs.claim(deps, "w", [queue], 10) if c.id == s.submitted.id]
    await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error=error, error_type="bad",
                                   final=True)], [c.attempt])
    return s.submitted.id


async def test_jobs_list_show_cancel_retry(deps: Deps, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    subs = await jobs.submit_many(deps, [JobSpec(queue="cq", job_type="mail", payload={"n": i})
                                         for i in range(3)])
    ids = [s.submitted.id for s in subs]

    code, out, _ = await cli(capsys, "jobs", "list", "--queue", "cq")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ID", "QUEUE", "TYPE", "STATUS"]
    assert [ln.split()[0] for ln in lines[1:]] == [str(i) for i in reversed(ids)]

    code, out, _ = await cli(capsys, "jobs", "list", "--queue", "cq", "--limit", "2", "--json")
    body = orjson.loads(out)
    assert [j["id"] for j in body["jobs"]] == [str(ids[2]), str(ids[1])]
    assert body["nextCursor"] == str(ids[1])
    code, out, _ = await cli(capsys, "jobs", "list", "--queue", "cq", "--limit", "2",
                             "--cursor", str(ids[1]), "--json")
    assert [j["id"] for j in orjson.loads(out)["jobs"]] == [str(ids[0])]

    code, out, _ = await cli(capsys, "jobs", "cancel", str(ids[0]), "--reason", "not needed")
    assert code == 0 and "cancelled" in out
    code, out, _ = await cli(capsys, "jobs", "show", str(ids[0]), "--json")
    shown = orjson.loads(out)
    assert (shown["status"], shown["error"], shown["payload"]) == ("cancelled", "not needed",
                                                                   {"n": 0})
    code, out, _ = await cli(capsys, "jobs", "show", str(ids[0]))
    assert "status:" in out and "cancelled" in out and "not needed" in out

    # refused operations: a message and status 1, no traceback
    code, _, err = await cli(capsys, "jobs", "cancel", str(ids[0]))
    assert code == 1 and "cancel" in err and "Traceback" not in err
    code, _, err = await cli(capsys, "jobs", "show", str(uuid.uuid4()))
    assert code == 1 and "not found" in err
    code, _, err = await cli(capsys, "jobs", "show", "nope")
    assert code == 1 and "not found" in err

    dead = await dead_letter(deps, "cq")
    code, out, _ = await cli(capsys, "jobs", "retry", str(dead), "--json")
    assert orjson.loads(out) == {"jobId": str(dead), "status": "pending"}


async def test_jobs_show_prints_attempts_progress_and_expired_result(
        deps: Deps, capsys: pytest.CaptureFixture[str]) -> None:
    from jobline.shared.core import progress

    await jobs.submit_many(deps, [JobSpec(queue="sq", job_type="t", payload={})])
    [c] = await jobs.claim(deps, "w", ["sq"], 1)
    await progress.record(deps, [progress.ProgressReport(c.id, c.token, 0.5, "halfway",
                                                         [(0, "first line")])])
    await jobs.complete(deps, [Outcome(c.id, c.token, ok=True, result={"ok": True})])
    code, out, _ = await cli(capsys, "jobs", "show", str(c.id))
    assert code == 0
    assert "progress (attempt 1): 50% halfway" in out and "first line" in out
    assert "completed" in out and '{"ok":true}' in out
    await deps.pool.execute("UPDATE jobs SET result = NULL, result_expired_at = now() "
                            "WHERE id = $1", c.id)
    code, out, _ = await cli(capsys, "jobs", "show", str(c.id))
    assert "(expired)" in out


async def test_queues_list_pause_resume_purge(deps: Deps, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    await jobs.submit_many(deps, [JobSpec(queue="pq", job_type="t", payload={})] * 3)
    code, out, _ = await cli(capsys, "queues", "pause", "pq")
    assert code == 0 and "paused" in out
    code, out, _ = await cli(capsys, "queues", "list")
    row = next(ln.split() for ln in out.splitlines() if ln.startswith("pq "))
    assert row[:3] == ["pq", "paused", "3"]
    code, out, _ = await cli(capsys, "queues", "resume", "pq", "--json")
    assert orjson.loads(out)["paused"] is False

    code, _, err = await cli(capsys, "queues", "purge", "pq")
    assert code == 2 and "--yes" in err
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE queue_name = 'pq' AND status = 'pending'") == 3
    code, out, _ = await cli(capsys, "queues", "purge", "pq", "--yes", "--json")
    assert orjson.loads(out) == {"queue": "pq", "cancelled": 3}
    code, out, _ = await cli(capsys, "queues", "list", "--json")
    q = next(q for q in orjson.loads(out)["queues"] if q["name"] == "pq")
    assert (q["pending"], q["cancelled"], q["ready"]) == (0, 3, 0)
    code, _, err = await cli(capsys, "queues", "pause", "bad name")
    assert code == 1 and "queue" in err


async def test_dlq_list_retry_export(deps: Deps, capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    a = await dead_letter(deps, "dq", "token=abc123 rejected")
    b = await dead_letter(deps, "dq2")
    code, out, _ = await cli(capsys, "dlq", "list")
    assert code == 0 and str(a) in out and str(b) in out
    assert "abc123" not in out and "token=***" in out  # masked like the API
    code, out, _ = await cli(capsys, "dlq", "list", "--queue", "dq", "--json")
    assert [j["id"] for j in orjson.loads(out)["jobs"]] == [str(a)]

    dest = tmp_path / "dlq.csv"
    code, _, err = await cli(capsys, "dlq", "export", "--format", "csv", "-o", str(dest))
    assert code == 0 and "exported 2" in err
    rows = list(csv.reader(io.StringIO(dest.read_text())))
    assert rows[0][:3] == ["id", "queue", "jobType"] and len(rows) == 3
    code, out, _ = await cli(capsys, "dlq", "export", "--queue", "dq2")
    assert [orjson.loads(ln)["id"] for ln in out.splitlines()] == [str(b)]

    code, _, err = await cli(capsys, "dlq", "retry")
    assert code == 2 and "--all" in err
    code, out, _ = await cli(capsys, "dlq", "retry", "--queue", "dq", "--json")
    assert orjson.loads(out) == {"count": 1, "ids": [str(a)]}
    code, out, _ = await cli(capsys, "dlq", "retry", "--all")
    assert code == 0 and out.startswith("1 dead-lettered")


def _parsers(p: argparse.ArgumentParser, path: str = "jobline"
             ) -> list[tuple[str, argparse.ArgumentParser]]:
    out = [(path, p)]
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, child in a.choices.items():
                out += _parsers(child, f"{path} {name}")
    return out


def test_every_option_and_argument_has_help() -> None:
    missing = [f"{path}: {a.dest}" for path, p in _parsers(build_parser()) for a in p._actions
               if not isinstance(a, argparse._SubParsersAction) and not a.help]
    assert missing == []
    paths = {path for path, _ in _parsers(build_parser())}
    assert {"jobline jobs list", "jobline jobs show", "jobline jobs retry", "jobline jobs cancel",
            "jobline queues list", "jobline queues pause", "jobline queues resume",
            "jobline queues purge", "jobline dlq list", "jobline dlq retry",
            "jobline dlq export"} <= paths


def test_help_is_plain_text_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(*argv: str) -> str:
        p = subprocess.run([sys.executable, "-m", "jobline", *argv], capture_output=True,
                           text=True, timeout=60,
                           env={**__import__("os").environ, "JOBLINE_API_KEY": "jl_secret"})
        assert p.returncode == 0, p.stderr
        return p.stdout

    top = run("--help")
    assert "``" not in top and "jobs" in top and "queues" in top and "dlq" in top
    assert "(default: 20)" in run("run", "--help")
    worker = run("worker", "--help")
    assert "(default: 10)" in worker and "jl_secret" not in worker
    assert "(default: jsonl)" in run("dlq", "export", "--help")


