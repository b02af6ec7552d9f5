"""Operating Jobline from a terminal: ``jobline jobs|queues|dlq ...``.

Every command talks to the stores directly (like ``jobline migrate``), so it needs the same
``DATABASE_URL``/``REDIS_URL`` (or a running ``jobline run``) and no API key. Output is a table
for people; ``--json`` prints the REST API's JSON shapes instead (masked the same way), for
scripts. Exit status: 0 done, 1 the operation was refused (unknown job, illegal transition,
invalid input), 2 configuration or usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import sys
import textwrap
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from jobline.shared.core.models import DlqFilter, Job
    from jobline.shared.platform.connections import Deps

#: Characters of an error message shown in a table cell.
_ERROR_CELL = 60


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's default in its help line (unless there is none to state: None, False, an
    empty list); descriptions keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, []) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def describe(help: str) -> str:
    """A command's description from its one-line help: a sentence, wrapped."""
    return textwrap.fill(help[0].upper() + help[1:] + ".", 79)


# --- output ----------------------------------------------------------------------------------


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], out: IO[str] | None = None
          ) -> None:
    """A plain left-aligned table (no borders, two spaces between columns)."""
    out = out or sys.stdout
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    for r in [list(headers), *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip(), file=out)
    if not rows:
        print("(none)", file=out)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    text = str(v).replace("\n", " ")
    return text if len(text) <= _ERROR_CELL else text[: _ERROR_CELL - 1] + "…"


def _when(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _print_json(value: Any) -> None:
    print(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _job_json(deps: Deps, job: Job, *, history: bool) -> dict[str, Any]:
    from jobline.api.schemas import job_json

    return job_json(job, history=history, mask_keys=deps.settings.mask_keys)


def _job_rows(jobs: Sequence[Job]) -> list[list[Any]]:
    return [[j.id, j.queue, j.job_type, j.status.value, f"{j.attempts}/{j.max_attempts}",
             _when(j.created_ms), j.error_type] for j in jobs]


_JOB_HEADERS = ("ID", "QUEUE", "TYPE", "STATUS", "ATTEMPTS", "CREATED (UTC)", "ERROR TYPE")


# --- jobs ------------------------------------------------------------------------------------


async def jobs_list(deps: Deps, args: argparse.Namespace) -> int:
    from jobline.shared.core import jobs as core

    page = await core.list_jobs(deps, queue=args.queue, status=args.status, job_type=args.type,
                                page_size=args.limit, cursor=args.cursor, with_total=False)
    if args.json:
        _print_json({"jobs": [_job_json(deps, j, history=False) for j in page.jobs],
                     "nextCursor": page.next_cursor})
        return 0
    table(_job_rows(page.jobs), _JOB_HEADERS)
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}")
    return 0


async def jobs_show(deps: Deps, args: argparse.Namespace) -> int:
    from jobline.shared.core import jobs as core

    job = await core.get_job(deps, _id(args.id))
    data = _job_json(deps, job, history=True)
    if args.json:
        _print_json(data)
        return 0
    fields = [("id", job.id), ("status", job.status.value), ("queue", job.queue),
              ("type", job.job_type), ("priority", job.priority),
              ("attempts", f"{job.attempts}/{job.max_attempts}"),
              ("created", _when(job.created_ms)), ("started", _when(job.started_ms)),
              ("finished", _when(job.completed_ms)), ("worker", job.worker_id),
              ("error type", job.error_type), ("error", data["error"])]
    if job.result_expired:
        fields.append(("result", "(expired)"))
    else:
        fields.append(("result", orjson.dumps(data["result"]).decode()
                       if data["result"] is not None else None))
        if job.result_expires_ms is not None:
            fields.append(("result expires", _when(job.result_expires_ms)))
    fields.append(("payload", orjson.dumps(data["payload"]).decode()))
    for k, v in fields:
        print(f"{k + ':':15} {'-' if v is None else v}")
    if job.attempts_history:
        print("\nattempts:")
        table([[a.attempt, a.outcome, _when(a.started_ms), a.duration_ms, a.worker_id,
                a.error_type] for a in job.attempts_history],
              ("#", "OUTCOME", "STARTED (UTC)", "MS", "WORKER", "ERROR TYPE"))
    p = data.get("progress")
    if p is not None:
        frac = f"{p['fraction'] * 100:.0f}%" if p["fraction"] is not None else "-"
        print(f"\nprogress (attempt {p['attempt']}): {frac} {p['message'] or ''}".rstrip())
        if p["logsDropped"]:
            print(f"  ({p['logsDropped']} earlier lines not kept)")
        for line in p["logs"]:
            print(f"  {_when(line['timeMs'])}  {line['message']}")
    return 0


async def jobs_retry(deps: Deps, args: argparse.Namespace) -> int:
    from jobline.shared.core import jobs as core

    status = await core.retry_now(deps, _id(args.id))
    return _transition(args, args.id, status.value, f"job {args.id} is {status.value} again")


async def jobs_cancel(deps: Deps, args: argparse.Namespace) -> int:
    from jobline.shared.core import jobs as core
    from jobline.shared.core.models import Status

    status = await core.cancel(deps, _id(args.id), args.reason)
    if status == Status.PROCESSING:
        return _transition(args, args.id, status.value,
                           f"job {args.id} is running: cancel requested (its handler is "
                           f"signalled; an async one is stopped after the grace period)",
                           cancel_requested=True)
    return _transition(args, args.id, status.value, f"job {args.id} cancelled")


def _transition(args: argparse.Namespace, job_id: str, status: str, text: str,
                **extra: Any) -> int:
    if args.json:
        _print_json({"jobId": job_id, "status": status, **extra})
    else:
        print(text)
    return 0


def _id(text: str) -> uuid.UUID:
    from jobline.shared.platform.errors import NotFound

    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound(f"job {text} not found (not a job id)") from None


# --- queues ----------------------------------------------------------------------------------


async def queues_list(deps: Deps, args: argparse.Namespace) -> int:
    from jobline.shared.core import jobs as core

    stats = await core.queue_stats(deps)
    if args.json:
        _print_json({"queues": stats})
        return 0
    table([[q["name"], "paused" if q["paused"] else "active", q["pending"], q["scheduled"],
            q["waiting"], q["processing"], q["completed"], q["deadLetter"], q["cancelled"],
            q["maxInFlight"]] for q in stats],
          ("QUEUE", "STATE", "PENDING", "SCHEDULED", "WAITING", "RUNNING", "COMPLETED",
           "DEAD", "CANCELLED", "MAX IN FLIGHT"))
    return 0


async def queues_pause(deps: Deps, args: argparse.Namespace) -> int:
    from jobline.shared.dispatch import queue_controls as qc

    qc.check_queue_name(args.queue, "queue")
    c = await qc.pause_queue(deps, args.queue)
    return _controls(args, c, f"queue {args.queue} paused (running jobs finish)")


async def queues_resume(deps: Deps, args: argparse.Namespace) -> int:
    from jobline.shared.dispatch import queue_controls as qc

    qc.check_queue_name(args.queue, "queue")
    c = await qc.resume_queue(deps, args.queue)
    return _controls(args, c, f"queue {args.queue} resumed")


def _controls(args: argparse.Namespace, c: Any, text: str) -> int:
    from jobline.api.schemas import queue_controls_json

    if args.json:
        _print_json(queue_controls_json(c))
    else:
        print(text)
    return 0


async def queues_purge(deps: Deps, args: argparse.Namespace) -> int:
    from jobline.shared.core import jobs as core
    from jobline.shared.dispatch import queue_controls as qc

    qc.check_queue_name(args.queue, "queue")
    if not args.yes:
        print(f"jobline: purging cancels every pending and scheduled job of {args.queue!r}; "
              "add --yes to confirm", file=sys.stderr)
        return 2
    n = await core.purge_queue(deps, args.queue)
    if args.json:
        _print_json({"queue": args.queue, "cancelled": n})
    else:
        print(f"queue {args.queue}: {n} jobs cancelled")
    return 0


# --- dead-letter queue -----------------------------------------------------------------------


def _dlq_filter(args: argparse.Namespace, ids: Sequence[str] = ()) -> DlqFilter:
    from jobline.shared.core.models import DlqFilter

    return DlqFilter(ids=tuple(_id(i) for i in ids) if ids else None, queue=args.queue,
                     job_type=args.type, error_type=args.error_type)


async def dlq_list(deps: Deps, args: argparse.Namespace) -> int:
    from jobline.shared.retry import dlq

    f = _dlq_filter(args)
    page = await dlq.list_dead_letters(deps, f, cursor=_id(args.cursor) if args.cursor else None,
                                       limit=args.limit)
    if args.json:
        _print_json({"jobs": [_job_json(deps, j, history=False) for j in page.jobs],
                     "nextCursor": page.next_cursor})
        return 0
    from jobline.shared.security.masking import mask_text

    table([[j.id, j.queue, j.job_type, j.error_type, mask_text(j.error, deps.settings.mask_keys),
            f"{j.attempts}/{j.max_attempts}", _when(j.completed_ms)] for j in page.jobs],
          ("ID", "QUEUE", "TYPE", "ERROR TYPE", "ERROR", "ATTEMPTS", "DEAD SINCE (UTC)"))
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}")
    return 0


async def dlq_retry(deps: Deps, args: argparse.Namespace) -> int:
    from jobline.shared.retry import dlq

    if not args.ids and not args.all and not (args.queue or args.type or args.error_type):
        print("jobline: name job ids, a filter (--queue/--type/--error-type), or --all",
              file=sys.stderr)
        return 2
    ids = await dlq.retry_dead_letters(deps, _dlq_filter(args, args.ids))
    if args.json:
        _print_json({"count": len(ids), "ids": [str(i) for i in ids]})
    else:
        print(f"{len(ids)} dead-lettered jobs sent back to pending")
    return 0


async def dlq_export(deps: Deps, args: argparse.Namespace) -> int:
    from jobline.api.admin import CSV_COLUMNS, _csv_row
    from jobline.shared.retry import dlq

    f = _dlq_filter(args)
    f.args()  # validate before anything is written
    n = 0
    with contextlib.ExitStack() as stack:
        # a CLI's one output file: blocking the loop while it opens stalls nothing else
        out: IO[str] = (sys.stdout if args.output == "-" else
                        stack.enter_context(open(args.output, "w", newline="")))  # noqa: ASYNC230
        w = csv.writer(out, lineterminator="\r\n")
        if args.format == "csv":
            w.writerow(CSV_COLUMNS)
        async for page in dlq.iter_dead_letters(deps, f):
            for j in page:
                if args.format == "csv":
                    w.writerow(_csv_row(j, deps.settings.mask_keys))
                else:
                    out.write(orjson.dumps(_job_json(deps, j, history=False)).decode() + "\n")
                n += 1
    if args.output != "-":
        print(f"exported {n} dead-lettered jobs to {args.output}", file=sys.stderr)
    return 0


async def analytics_rebuild(deps: Deps, args: argparse.Namespace) -> int:
    from jobline.analytics.rebuild import rebuild

    def ms(text: str, flag: str) -> int:
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise SystemExit(f"jobline: {flag} {text!r} is not an ISO 8601 time") from None
        return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)

    lo, hi = ms(args.from_, "--from"), ms(args.to, "--to")
    if hi <= lo:
        raise SystemExit("jobline: --from must be before --to")
    rep = await rebuild(deps, lo, hi)
    if args.json:
        _print_json(rep)
    else:
        print(f"rebuilt rollups {rep['from']} .. {rep['to']} from {rep['attempts']} attempts "
              f"in {rep['seconds']} s: " + ", ".join(f"{t} {n}" for t, n in rep["rows"].items()))
    return 0


# --- wiring ----------------------------------------------------------------------------------

Handler = Callable[["Deps", argparse.Namespace], Awaitable[int]]


def run(fn: Handler, args: argparse.Namespace) -> int:
    """Run one command with connections to the configured stores; a refused operation is a
    message and exit status 1, not a traceback."""
    from jobline.cli import resolve_settings
    from jobline.shared.platform.connections import connect
    from jobline.shared.platform.errors import ConfigError, JoblineError

    async def go() -> int:
        deps = await connect(resolve_settings(), pool_size=2)
        try:
            return await fn(deps, args)
        finally:
            await deps.close()

    try:
        return asyncio.run(go())
    except ConfigError:
        raise
    except JoblineError as e:
        print(f"jobline: {e}", file=sys.stderr)
        return 1


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true",
                   help="print JSON (the REST API's shapes) instead of a table")


def _dlq_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queue", default=None, help="only jobs of this queue")
    p.add_argument("--type", default=None, help="only jobs of this job type")
    p.add_argument("--error-type", default=None, help="only jobs whose last error has this type")


def add_parsers(sub: Any) -> None:
    """Add ``jobs``, ``queues`` and ``dlq`` to the ``jobline`` command's subparsers."""
    from jobline.shared.core.models import Status

    def command(parent: Any, name: str, fn: Handler, help: str, *, json: bool = True
                ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(
            name, help=help, description=describe(help), formatter_class=HelpFormatter)
        p.set_defaults(fn=lambda args, fn=fn: run(fn, args))
        if json:
            _json_flag(p)
        return p

    # jobs
    g = sub.add_parser("jobs", help="list, show, retry and cancel jobs",
                       description="List, show, retry and cancel jobs.",
                       formatter_class=HelpFormatter)
    gs = g.add_subparsers(dest="jobs_cmd", required=True, metavar="COMMAND")
    p = command(gs, "list", jobs_list, "list jobs, newest first")
    p.add_argument("--queue", default=None, help="only jobs of this queue")
    p.add_argument("--status", default=None, choices=[s.value for s in Status],
                   help="only jobs in this status")
    p.add_argument("--type", default=None, help="only jobs of this job type")
    p.add_argument("--limit", type=int, default=20, help="jobs per page")
    p.add_argument("--cursor", default=None,
                   help="continue after this job id (printed under a full page)")
    p = command(gs, "show", jobs_show, "show one job: fields, attempts, progress and logs")
    p.add_argument("id", help="the job id")
    p = command(gs, "retry", jobs_retry,
                "send a dead-lettered (or failed) job back to pending with fresh attempts")
    p.add_argument("id", help="the job id")
    p = command(gs, "cancel", jobs_cancel,
                "cancel a job (a running one: request it and signal its worker)")
    p.add_argument("id", help="the job id")
    p.add_argument("--reason", default=None,
                   help="stored as the job's error (not-yet-started jobs)")

    # queues
    g = sub.add_parser("queues", help="list, pause, resume and purge queues",
                       description="List, pause, resume and purge queues.",
                       formatter_class=HelpFormatter)
    gs = g.add_subparsers(dest="queues_cmd", required=True, metavar="COMMAND")
    command(gs, "list", queues_list, "per-queue job counts and controls")
    p = command(gs, "pause", queues_pause, "stop claims from a queue (running jobs finish)")
    p.add_argument("queue", help="the queue name")
    p = command(gs, "resume", queues_resume, "allow claims from a queue again")
    p.add_argument("queue", help="the queue name")
    p = command(gs, "purge", queues_purge,
                "cancel every pending and scheduled job of a queue (running jobs finish)")
    p.add_argument("queue", help="the queue name")
    p.add_argument("--yes", action="store_true", help="confirm: without it nothing is purged")

    # dead-letter queue
    g = sub.add_parser("dlq", help="list, retry and export dead-lettered jobs",
                       description="List, retry and export dead-lettered jobs.",
                       formatter_class=HelpFormatter)
    gs = g.add_subparsers(dest="dlq_cmd", required=True, metavar="COMMAND")
    p = command(gs, "list", dlq_list, "dead-lettered jobs, newest first")
    _dlq_filters(p)
    p.add_argument("--limit", type=int, default=20, help="jobs per page")
    p.add_argument("--cursor", default=None,
                   help="continue after this job id (printed under a full page)")
    p = command(gs, "retry", dlq_retry,
                "send dead-lettered jobs back to pending: by id, or all matching a filter")
    p.add_argument("ids", nargs="*", default=[], help="job ids (none: every job matching)")
    _dlq_filters(p)
    p.add_argument("--all", action="store_true",
                   help="with no ids and no filter: retry the whole dead-letter queue")
    p = command(gs, "export", dlq_export, "write every matching dead-lettered job to a file",
                json=False)
    _dlq_filters(p)
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl",
                   help="jsonl: one REST-shaped job per line; csv: the columns of "
                        "GET /api/v1/admin/dlq.csv")
    p.add_argument("--output", "-o", default="-", help="file to write; - is stdout")

    # analytics
    g = sub.add_parser("analytics", help="maintain the analytics rollups",
                       description="Maintain the analytics rollups (docs/analytics.md).",
                       formatter_class=HelpFormatter)
    gs = g.add_subparsers(dest="analytics_cmd", required=True, metavar="COMMAND")
    p = command(gs, "rebuild", analytics_rebuild,
                "recompute every rollup grain from jobs + job_attempts for the whole UTC days "
                "touching [--from, --to) (delete then insert)")
    p.add_argument("--from", dest="from_", required=True, help="ISO 8601 start, e.g. 2026-01-01")
    p.add_argument("--to", required=True, help="ISO 8601 end (exclusive)")
