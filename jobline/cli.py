"""``jobline`` command line: run, api, worker, scheduler, migrate, reconcile, seed, keys, and the
operating commands ``jobs``, ``queues`` and ``dlq`` (:mod:`jobline.cli_ops`).

Every command finds its services the same way: ``DATABASE_URL``/``REDIS_URL`` if set, else the
``services.json`` that ``jobline run`` writes into ``JOBLINE_HOME`` (default ``.jobline``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from jobline.shared.platform.config import Settings, load, services_file
from jobline.shared.platform.errors import ConfigError

if TYPE_CHECKING:
    from jobline.shared.platform.connections import Deps

log = logging.getLogger("jobline.cli")


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s[%(process)d]: %(message)s",
    )
    from jobline.shared.security.masking import install_log_filter

    install_log_filter(load().mask_keys)


def resolve_settings() -> Settings:
    """Settings with database/redis URLs from the environment (after SSM parameters under
    ``JOBLINE_SSM_PREFIX``, if set) or from ``jobline run``."""
    prefix = os.environ.get("JOBLINE_SSM_PREFIX")
    if prefix:
        from jobline.shared.platform.ssm import apply_parameters

        apply_parameters(prefix)
    s = load()
    if s.database_url is None or s.redis_url is None:
        raise ConfigError(
            f"no database/redis configured: set DATABASE_URL and REDIS_URL, or start the local "
            f"services with `make run` (looked for {services_file(s.home)})")
    return s


#: A worker still running this long after its second signal is forced out (``os._exit``).
COLD_EXIT_S = 5.0
#: Slack on top of a warm stop's own bound before the watchdog forces the exit.
WATCHDOG_MARGIN_S = 5.0


def _install_uvloop() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep plain asyncio usable
        pass


def _load_apps(apps: list[str]) -> None:
    # Like `python -m`, let `--app myapp.jobs` find modules in the current directory (the
    # console-script entry point does not put it on sys.path).
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for app in apps:
        for mod in app.split(","):
            if mod.strip():
                importlib.import_module(mod.strip())


class _Service(Protocol):
    """A long-running command's main object (scheduler, relay, consumer)."""

    async def run(self) -> Any: ...

    def request_stop(self) -> None: ...


def _on_stop_signals(handler: Callable[[], None]) -> None:
    """SIGTERM and SIGINT call ``handler`` in the running event loop (a graceful stop)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, handler)


def _with_deps(fn: Callable[[Deps], Awaitable[None]], *, pool_size: int | None = None) -> None:
    """Run ``fn`` with connections to the configured stores, closed afterwards whatever happens."""
    from jobline.shared.platform.connections import connect

    async def go() -> None:
        deps = await connect(resolve_settings(), pool_size=pool_size)
        try:
            await fn(deps)
        finally:
            await deps.close()

    asyncio.run(go())


def _serve(build: Callable[[Deps, contextlib.AsyncExitStack], Awaitable[_Service]], *,
           pool_size: int) -> int:
    """The start-up every long-running command shares: uvloop, connections, ``build`` the
    service (what it opens it registers with the stack, closed in reverse order before the
    connections), SIGTERM/SIGINT request a graceful stop, run until stopped."""
    _install_uvloop()

    async def go(deps: Deps) -> None:
        async with contextlib.AsyncExitStack() as stack:
            service = await build(deps, stack)
            _on_stop_signals(service.request_stop)
            await service.run()

    _with_deps(go, pool_size=pool_size)
    return 0


# --- commands ---------------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> int:
    from jobline.shared.platform.migrate import migrate

    s = resolve_settings()
    assert s.database_url
    applied = asyncio.run(migrate(s.database_url))
    print(f"applied migrations: {', '.join(applied) if applied else 'none (up to date)'}")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from jobline.shared.core.maintenance import reconcile

    async def go(deps: Deps) -> None:
        rep = await reconcile(deps)
        print(f"reconcile: scanned {rep.scanned} jobs, restored {rep.added} dispatch entries")

    _with_deps(go)
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    """``jobline seed --jobs 100M --days 30 [--seed 42]``: history into the configured store."""
    from jobline.analytics.seed import parse_count, seed

    try:
        jobs = parse_count(args.jobs)
    except ValueError as e:
        print(f"jobline seed: {e}", file=sys.stderr)
        return 2

    async def go(deps: Deps) -> None:
        rep = await seed(deps, jobs=jobs, days=args.days, seed_value=args.seed,
                         rollups=not args.no_rollups, progress=print)
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in rep.seconds.items())
        print(f"seeded {rep.jobs} jobs ({rep.pending} pending), {rep.attempts} attempts, "
              f"{rep.batches} batches, {rep.chains} report chains, {rep.incidents} incidents, "
              f"{rep.samples} samples in {rep.total_s:.1f} s ({steps})")

    _with_deps(go, pool_size=2)
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    from jobline.api.server import serve

    s = resolve_settings()
    if args.port:
        s = s.with_(api_port=args.port)
    serve(s)
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    from jobline.schedulers.runner import Scheduler

    async def build(deps: Deps, stack: contextlib.AsyncExitStack) -> _Service:
        return Scheduler(deps)

    # the alert tick holds one connection while it reads the queue counts on another, and the
    # alert delivery worker shares the pool
    return _serve(build, pool_size=6)


def cmd_relay(args: argparse.Namespace) -> int:
    from jobline.analytics.fold import make_fold
    from jobline.shared.events.buses import create_bus
    from jobline.shared.events.outbox import Relay

    async def build(deps: Deps, stack: contextlib.AsyncExitStack) -> _Service:
        bus = await create_bus(deps.settings)
        stack.push_async_callback(bus.close)
        # The rollups and alerts are folded by the relay, in its cursor's transaction.
        return Relay(deps, bus, fold=make_fold(deps))

    return _serve(build, pool_size=2)


def cmd_consumer(args: argparse.Namespace) -> int:
    from jobline.analytics.consumer import ConsumerHost, parse_kinds

    try:
        kinds = parse_kinds(args.kind, args.kinds)
    except ValueError as e:
        print(f"jobline consumer: {e}", file=sys.stderr)
        return 2

    async def build(deps: Deps, stack: contextlib.AsyncExitStack) -> _Service:
        host = ConsumerHost(kinds)
        stack.push_async_callback(host.close)
        return host

    return _serve(build, pool_size=2)


def cmd_worker(args: argparse.Namespace) -> int:
    args.api_key = args.api_key or os.environ.get("JOBLINE_API_KEY")
    if args.processes > 1 or args.group:
        # The supervisor runs no handler: an app that fails to import is its workers' crash
        # (recorded, restarted with backoff), not the supervisor's.
        return _supervise(args)
    _load_apps(args.app)
    from jobline.shared.platform.connections import Deps, connect
    from jobline.worker.diagnostics import ExitWatchdog, install_dump_signal
    from jobline.worker.remote import RemoteBackend
    from jobline.worker.runtime import Worker, WorkerStats

    _install_uvloop()
    queues = [q.strip() for q in args.queues.split(",") if q.strip()] if args.queues else None
    cold_exit = False

    async def go() -> WorkerStats:
        nonlocal cold_exit
        deps: Deps | RemoteBackend
        if args.remote:
            # No database or Redis here: every claim, heartbeat and outcome goes through the API.
            logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request
            deps = RemoteBackend(args.remote, api_key=args.api_key)
            await deps.open()
        else:
            deps = await connect(resolve_settings(),
                                 pool_size=min(max(4, args.concurrency // 5), 20))
        worker = Worker(deps, queues=queues, concurrency=args.concurrency,
                        worker_id=args.worker_id,
                        group=args.member_of or os.environ.get("JOBLINE_WORKER_GROUP"))
        signals = {"n": 0}
        loop = asyncio.get_running_loop()
        # Every stop ends: warm within grace + the worker's own bound (+ a margin), cold within
        # COLD_EXIT_S, whatever the stores or the handlers do (docs/guarantees.md §6).
        watchdog = ExitWatchdog(loop)
        grace = worker.backend.settings.shutdown_grace_s

        def on_signal() -> None:
            signals["n"] += 1
            cold = signals["n"] > 1
            log.info("%s shutdown requested", "cold" if cold else "warm")
            if cold:
                watchdog.arm(COLD_EXIT_S, "cold shutdown (second signal)")
            else:
                watchdog.arm(grace + worker.stop_bound_s + WATCHDOG_MARGIN_S, "warm shutdown")
            worker.request_stop(cold=cold)

        _on_stop_signals(on_signal)
        install_dump_signal(loop)  # kill -USR1: task and thread stacks into the log
        try:
            return await worker.run()
        finally:
            cold_exit = signals["n"] > 1
            if isinstance(deps, Deps):  # the worker closed a remote backend itself
                await deps.close(timeout=worker.teardown_step_s)

    stats = asyncio.run(go())
    if cold_exit:
        # Threads running sync handlers cannot be interrupted; do not wait for them.
        os._exit(0)
    from jobline.worker.pool import STOPPED_ON_REQUEST

    # a supervisor must not replace a worker stopped on request
    return STOPPED_ON_REQUEST if stats.stop_requested else 0


def _supervise(args: argparse.Namespace) -> int:
    """``--group`` / ``--processes N``: a supervisor converging to the group's stored count."""
    from jobline.worker import pool
    from jobline.worker.group_control import RemoteControl
    from jobline.worker.runtime import stop_bound_s

    group = args.group or "default"

    def child(worker_id: str) -> list[str]:
        cmd = [sys.executable, "-m", "jobline", "worker", "--processes", "1",
               "--concurrency", str(args.concurrency), "--worker-id", worker_id,
               "--member-of", group]
        for a in args.app:
            cmd += ["--app", a]
        if args.queues:
            cmd += ["--queues", args.queues]
        if args.remote:
            cmd += ["--remote", args.remote]
        if args.api_key:
            cmd += ["--api-key", args.api_key]
        return cmd

    s = load()
    # a child's warm stop: grace + the worker's own stop bound + its watchdog margin, + slack
    warm = (s.shutdown_grace_s + stop_bound_s(2 * s.lease_ms / 1000, s.teardown_step_ms / 1000)
            + 2 * WATCHDOG_MARGIN_S)
    control: pool.GroupControl = (RemoteControl(args.remote, args.api_key) if args.remote
                                  else pool.direct_control(resolve_settings()))
    return pool.run_group(child, group, max(0, args.processes), control, warm)


async def _builtin_schedules(settings: Settings) -> None:
    """The daily model training (``JOBLINE_AI_TRAIN_CRON``, ``off`` for none; docs/ai.md)."""
    from jobline.analytics.ai import jobs as ai_jobs
    from jobline.shared.platform.connections import connect

    deps = await connect(settings, pool_size=2)  # the lock's connection + the insert's
    try:
        await ai_jobs.ensure_schedule(deps, os.environ.get("JOBLINE_AI_TRAIN_CRON",
                                                           ai_jobs.DEFAULT_CRON))
    finally:
        await deps.close()


def admin_key_file(home: Path) -> Path:
    return home / "admin.key"


async def _local_admin_key(settings: Settings) -> str:
    """The local admin key: created on the first start, kept (mode 0600) in JOBLINE_HOME."""
    from jobline.shared.platform.connections import connect
    from jobline.shared.security.auth import create_key

    f = admin_key_file(settings.home)
    if f.exists():
        return str(f.read_text().strip())
    deps = await connect(settings, pool_size=1)
    try:
        _, key = await create_key(deps, "admin", "local admin (make run)")
    finally:
        await deps.close()
    f.touch(mode=0o600)
    f.write_text(key + "\n")
    return key


def cmd_keys(args: argparse.Namespace) -> int:
    """``jobline keys create --role R [--name N]`` prints the new key alone on its last line."""
    from jobline.shared.security import auth

    async def go(deps: Deps) -> None:
        if args.keys_cmd == "create":
            info, key = await auth.create_key(deps, args.role, args.name or "")
            print(f"created {info.role.value} key {info.prefix}... ({info.name}, id {info.id})")
            print("store it now; it is not shown again:")
            print(key)
        elif args.keys_cmd == "list":
            for k in await auth.list_keys(deps):
                state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
                print(f"{k.id}  {k.prefix}...  {k.role.value:9}  {state:18}  {k.name}")
        else:
            k = await auth.revoke_key(deps, args.key)
            print(f"revoked {k.prefix}... ({k.name})")

    _with_deps(go, pool_size=1)
    return 0


def cmd_ai(args: argparse.Namespace) -> int:
    """``jobline ai train`` / ``jobline ai detect --from --to``."""
    from datetime import datetime

    def ms(text: str, name: str) -> int:
        try:
            return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            raise ConfigError(f"{name}: not an ISO 8601 time: {text!r}") from None

    async def go(deps: Deps) -> None:
        if args.ai_cmd == "train":
            from jobline.analytics.ai import training

            out = await training.train_all(deps, days=args.days)
            adv = out["retryAdvisor"]
            print(f"trained {adv['kind']} v{adv['version']} on {adv['followUps']:,} retries "
                  f"({adv['errorTypes']} error types)")
            m, b = out["model"], out["baseline"]
            print(f"trained {out['kind']} v{out['version']} on {out['rows']['train']:,} "
                  f"attempts (holdout {out['rows']['holdout']:,}, newest by time)")
            for k in ("rocAuc", "prAuc", "accuracy", "brier", "ece"):
                print(f"  {k:9} model {m[k]:.4f}   baseline (type rate) {b[k]:.4f}")
        else:
            from jobline.analytics.ai import anomaly

            found = await anomaly.detect(deps, ms(args.from_, "--from"), ms(args.to, "--to"),
                                         queue=args.queue)
            for a in found:
                print(f"{datetime.fromtimestamp(a['detectedAtMs'] / 1000):%Y-%m-%d %H:%M}  "
                      f"{a['queue']:20} {a['metric']:20} value {a['currentValue']:.4g} "
                      f"baseline {a['baseline']:.4g} score {a['score']}")
            print(f"{len(found)} anomalies")

    _with_deps(go, pool_size=2)
    return 0


def wait_for_http(url: str, proc: subprocess.Popen[bytes] | None, *, deadline_s: float,
                  stopping: Callable[[], bool] = lambda: False) -> bool:
    """Poll ``url`` until it answers 200; False when ``deadline_s`` passes, ``proc`` exits
    or ``stopping()`` turns true first."""
    import urllib.error
    import urllib.request

    end = time.monotonic() + deadline_s
    while time.monotonic() < end and not stopping():
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)  # polling a child process that is starting, in a foreground CLI
    return False

def stack_commands(app: str, processes: int, concurrency: int, *,
                   events: bool = True) -> dict[str, list[str]]:
    """The processes ``jobline run`` starts and supervises, by name, in start order.

    One function so that ``bench/shipped.py`` (the shipped-stack benchmark) starts exactly what
    ``make run`` starts and follows any change to it. ``events=False`` (``JOBLINE_EVENTS=off``)
    leaves out the relay.
    """
    return {
        "api": [sys.executable, "-m", "jobline", "api"],
        "scheduler": [sys.executable, "-m", "jobline", "scheduler"],
        # a supervisor of the worker group "default": the dashboard scales it (docs/workers.md)
        "workers": [sys.executable, "-m", "jobline", "worker", "--app", app, "--group", "default",
                    "--processes", str(processes), "--concurrency", str(concurrency)],
        # job events: outbox -> bus, folding the rollups and alerts on the way (no consumer
        # process, docs/events.md); not with JOBLINE_EVENTS=off
        **({"relay": [sys.executable, "-m", "jobline", "relay"]} if events else {}),
    }


def cmd_run(args: argparse.Namespace) -> int:
    """Start everything locally in the foreground; Ctrl-C stops it all gracefully."""
    from jobline import lifeline
    from jobline.local import LocalServices
    from jobline.shared.platform.migrate import migrate

    s = Settings()
    s.home.mkdir(parents=True, exist_ok=True)
    # A run that was killed left its record: stop what it names before starting anything.
    try:
        left = lifeline.stop_leftovers(s.home, wait_s=s.shutdown_grace_s + 15,
                                       services=False)  # a leftover server is adopted below
    except lifeline.RunActive as e:
        raise ConfigError(f"{e}; stop it first, or use another JOBLINE_HOME") from None
    if left:
        log.warning("stopped leftovers of an earlier run: %s", ", ".join(left))
    services = LocalServices(s.home, database_url=s.database_url, redis_url=s.redis_url).start()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False
    kafka: Any = None
    embedded = s.database_url is None or s.redis_url is None
    # Dies with us (parent-death signal) and then stops the embedded services, once the other
    # children (which die with us too) are gone.
    guardian = subprocess.Popen(
        [sys.executable, "-m", "jobline.lifeline", "guard", "--home", str(s.home),
         "--wait", str(s.shutdown_grace_s + 15)],
        env=lifeline.child_env(), start_new_session=True)
    lifeline.record_run(s.home, {"guardian": guardian.pid}, embedded=embedded)

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        applied = asyncio.run(migrate(services.database_url))
        services_file(s.home).write_text(json.dumps(
            {"database_url": services.database_url, "redis_url": services.redis_url}, indent=2))
        admin_key = asyncio.run(_local_admin_key(s.with_(database_url=services.database_url,
                                                         redis_url=services.redis_url)))
        asyncio.run(_builtin_schedules(s.with_(database_url=services.database_url,
                                               redis_url=services.redis_url)))
        env = lifeline.child_env(dict(os.environ, DATABASE_URL=services.database_url,
                                      REDIS_URL=services.redis_url, JOBLINE_HOME=str(s.home)))
        if s.events and s.event_bus == "kafka" and not s.kafka_bootstrap:
            from jobline.local import EmbeddedKafka

            kafka = EmbeddedKafka(s.home / "tansu.log")
            env["KAFKA_BOOTSTRAP_SERVERS"] = kafka.start()
        commands = stack_commands(args.app, args.processes, args.concurrency, events=s.events)

        def spawn(name: str) -> None:
            # Children get their own process group so the terminal's Ctrl-C reaches only us;
            # we then stop them in order (workers drain first).
            procs[name] = subprocess.Popen(commands[name], env=env, start_new_session=True)
            lifeline.record_run(s.home, {"guardian": guardian.pid,
                                         **{n: p.pid for n, p in procs.items()}},
                                embedded=embedded)

        for name in commands:
            spawn(name)
        # The banner promises a working API: print it once /healthz answers (the API process
        # takes a few seconds to import and connect), not when the processes were merely spawned.
        host = "127.0.0.1" if s.api_host in ("0.0.0.0", "::", "") else s.api_host
        if not wait_for_http(f"http://{host}:{s.api_port}/healthz", procs["api"],
                             deadline_s=60, stopping=lambda: stopping) and not stopping:
            log.warning("the API did not answer /healthz within 60 s (see its log above)")
        print("\nJobline is running:", flush=True)
        for line in services.describe():
            print(f"  {line}")
        print(f"  api:       http://{s.api_host}:{s.api_port}  (REST /api/v1, OpenAPI "
              f"/api/v1/openapi.json) pid {procs['api'].pid}")
        print(f"  dashboard: http://{s.api_host}:{s.api_port}/")
        print(f"  workers:   {args.processes} processes x {args.concurrency} concurrency, "
              f"app {args.app}, every queue, pid {procs['workers'].pid}")
        print(f"  scheduler: delayed jobs, lease reaper, reconcile, pid {procs['scheduler'].pid}")
        if s.events:
            print(f"  events:    relay (folds rollups and alerts) on the {s.event_bus} bus, "
                  f"pid {procs['relay'].pid}")
        else:
            print("  events:    off (JOBLINE_EVENTS=off: no outbox rows, no relay)")
        print(f"  data:      {s.home}  (migrations applied now: {', '.join(applied) or 'none'})")
        print(f"  admin key: {admin_key}  (also in {admin_key_file(s.home)}; send it as "
              "X-Api-Key)")
        print("Press Ctrl-C to stop.\n", flush=True)
        from jobline.worker.pool import Restarts

        restarts = Restarts()
        started = dict.fromkeys(procs, time.monotonic())
        due: dict[str, float] = {}  # when a dead child's replacement is due
        while not stopping:
            time.sleep(0.2)  # supervising loop of a foreground CLI, not a state wait in tests
            now = time.monotonic()
            for name, p in list(procs.items()):
                if stopping:
                    break
                if name not in due and p.poll() is not None:
                    delay = restarts.delay_s(name, started[name], now)
                    log.warning("%s exited with %s after %.1fs (%d in a row); restarting in "
                                "%.1fs", name, p.returncode, now - started[name],
                                restarts.crashes_in_a_row(name), delay)
                    due[name] = now + delay
                if name in due and now >= due[name]:
                    del due[name]
                    started[name] = now
                    spawn(name)
    finally:
        print("\nstopping: workers (warm shutdown), scheduler, api ...", flush=True)
        order = ["workers", "scheduler", "api", *(n for n in procs if n.startswith(("relay",
                                                                                   "consumer")))]
        for name in order:
            child = procs.get(name)
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for name in order:
            child = procs.get(name)
            if child is None:
                continue
            try:
                child.wait(timeout=s.shutdown_grace_s + 10)
            except subprocess.TimeoutExpired:
                child.kill()
        if kafka is not None:
            kafka.stop()
        services.stop()
        # A clean stop: nothing left for the guardian (or the next run) to stop.
        lifeline.clear_run(s.home)
        guardian.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            guardian.wait(timeout=10)
        print("stopped; data kept in", s.home, flush=True)
    return 0


#: The top-level ``--help`` text (the module docstring is reStructuredText for the docs).
DESCRIPTION = """Jobline: background jobs on PostgreSQL (the truth) and Redis/Valkey (dispatch).

Every command finds its services the same way: DATABASE_URL and REDIS_URL if set, else the
services.json that `jobline run` writes into JOBLINE_HOME (default .jobline).
Run `jobline COMMAND --help` for a command's options."""


def build_parser() -> argparse.ArgumentParser:
    """The ``jobline`` argument parser: every command, every option with its help."""
    from jobline import cli_ops

    fmt = cli_ops.HelpFormatter
    parser = argparse.ArgumentParser(prog="jobline", description=DESCRIPTION,
                                     formatter_class=fmt)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(
            name, help=help, description=cli_ops.describe(help), formatter_class=fmt)
        return p

    p = command("run", "start embedded PostgreSQL + Valkey, API, workers, scheduler, event "
                       "relay in the foreground (Ctrl-C stops them)")
    p.add_argument("--app", default="jobline.demo",
                   help="module registering the workers' handlers with @job")
    p.add_argument("--processes", type=int, default=2, help="worker processes")
    p.add_argument("--concurrency", type=int, default=20,
                   help="jobs each worker process runs at once")
    p.set_defaults(fn=cmd_run)

    p = command("api", "run the HTTP API (REST, GraphQL and the dashboard)")
    p.add_argument("--port", type=int, default=None,
                   help="port to listen on (default: $JOBLINE_PORT, else 8000)")
    p.set_defaults(fn=cmd_api)

    p = command("worker", "run workers")
    p.add_argument("--app", action="append", default=[],
                   help="module(s) registering handlers with @job (repeatable)")
    p.add_argument("--queues", default=None, help="comma-separated; default: every queue")
    p.add_argument("--concurrency", type=int, default=10,
                   help="jobs each worker process runs at once")
    p.add_argument("--processes", type=int, default=1,
                   help="worker processes (more than 1: a supervised pool)")
    p.add_argument("--group", default=None, metavar="NAME",
                   help="supervise worker group NAME: converge to its desired process count, "
                        "stored centrally (--processes seeds a new group); default with "
                        "--processes > 1: the group 'default'")
    p.add_argument("--worker-id", default=None, help=argparse.SUPPRESS)  # set by a supervisor
    p.add_argument("--member-of", default=None, help=argparse.SUPPRESS)  # the supervisor's group
    p.add_argument("--remote", default=None, metavar="URL",
                   help="claim and complete through the Jobline API at URL (no database/Redis)")
    # resolved when used, not here: --help must never print a secret as a default
    p.add_argument("--api-key", default=None,
                   help="API key sent with --remote requests (default: $JOBLINE_API_KEY)")
    p.set_defaults(fn=cmd_worker)

    p = command("scheduler", "run the delayed-job timer, lease reaper, reconciler, cron and "
                             "result expiry")
    p.set_defaults(fn=cmd_scheduler)

    p = command("relay", "publish the job-event outbox to the event bus, folding the rollups "
                         "and alerts")
    p.set_defaults(fn=cmd_relay)

    p = command("consumer", "retired: the relay folds the rollups and alerts; idles until "
                            "stopped")
    p.add_argument("kind", nargs="?", default=None,
                   help="accepted and ignored: analytics, alerts or audit need no consumer now")
    p.add_argument("--kinds", default=None, help="comma-separated, accepted and ignored")
    p.set_defaults(fn=cmd_consumer)

    p = command("keys", "create, list and revoke API keys")
    ks = p.add_subparsers(dest="keys_cmd", required=True, metavar="COMMAND")
    kc = ks.add_parser("create", help="create a key; prints it alone on the last line",
                       formatter_class=fmt)
    kc.add_argument("--role", choices=["developer", "admin"], default="developer",
                    help="developer: submit and read; admin: everything")
    kc.add_argument("--name", default="", help="a label to recognise the key by")
    ks.add_parser("list", help="list keys (prefix, role, state)", formatter_class=fmt)
    kr = ks.add_parser("revoke", help="revoke a key by id or prefix", formatter_class=fmt)
    kr.add_argument("key", help="the key's id or prefix")
    p.set_defaults(fn=cmd_keys)

    p = command("ai", "AI operations: train the models, detect anomalies over a past range")
    ai = p.add_subparsers(dest="ai_cmd", required=True, metavar="COMMAND")
    at = ai.add_parser("train", help="train the failure-prediction model; prints its holdout "
                                     "metrics next to the baseline's", formatter_class=fmt)
    at.add_argument("--days", type=int, default=7, help="days of history to learn from")
    ad = ai.add_parser("detect", help="run the anomaly detector over a past range (what the "
                                      "scheduler does minute by minute)", formatter_class=fmt)
    ad.add_argument("--from", dest="from_", required=True, help="ISO 8601 start")
    ad.add_argument("--to", required=True, help="ISO 8601 end")
    ad.add_argument("--queue", default=None, help="one queue (default: all)")
    p.set_defaults(fn=cmd_ai)

    p = command("migrate", "apply database migrations")
    p.set_defaults(fn=cmd_migrate)

    p = command("reconcile", "rebuild Redis dispatch state from PostgreSQL")
    p.set_defaults(fn=cmd_reconcile)

    p = command("seed", "fill the store with a month of plausible history for the analytics "
                        "(docs/analytics.md)")
    p.add_argument("--jobs", default="1M", help="how many jobs: 100M, 1M, 10k, 2500")
    p.add_argument("--days", type=int, default=30, help="days of history, ending now")
    p.add_argument("--seed", type=int, default=42, help="random seed (same seed, same rows)")
    p.add_argument("--no-rollups", action="store_true",
                   help="skip the rollup rebuild at the end")
    p.set_defaults(fn=cmd_seed)

    cli_ops.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from jobline.lifeline import die_with_parent

    # Started by `jobline run` or a worker supervisor: end with it, even if it is SIGKILLed.
    die_with_parent()
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.fn(args))
    except ConfigError as e:
        print(f"jobline: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
