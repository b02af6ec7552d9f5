"""Children die with their parent; a restarted ``jobline run`` stops what a killed one left.

Jobline's long-running processes start their children in sessions of their own (so a terminal's
Ctrl-C reaches only the parent, which then stops them in order). The price: when the parent is
killed outright (SIGKILL, the OOM killer), nothing forwards a signal, and the children used to run
on as orphans. Two mechanisms close that:

* **Parent-death signal.** A parent starts each child with ``JOBLINE_PARENT_PID`` set to its own
  pid (:func:`child_env`); the child, first thing (:func:`die_with_parent`), asks the kernel for a
  SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)`` through ctypes, Linux) — a *warm*
  stop, so a worker still drains or releases its jobs. Elsewhere a daemon thread watches the
  parent pid instead. A parent that died before the child asked is caught by comparing
  ``getppid()`` with the recorded pid right after.
* **Run record.** ``jobline run`` writes ``JOBLINE_HOME/run.json`` (its pid and each child's
  pid, with their start times so a recycled pid is never mistaken for ours). A guardian child
  (``python -m jobline.lifeline guard``) that itself dies with the run stops the embedded
  PostgreSQL/Valkey once the run's other children are gone; and a restarted ``jobline run``
  stops whatever the record still names (:func:`stop_leftovers`) before it starts anything.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psutil

log = logging.getLogger("jobline.lifeline")

#: The environment variable naming the pid a child must die with.
PARENT_ENV = "JOBLINE_PARENT_PID"
#: ``prctl`` option: the signal delivered to this process when its parent exits (linux/prctl.h).
PR_SET_PDEATHSIG = 1
#: How often the portable fallback checks the parent pid.
WATCH_PERIOD_S = 1.0


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) for a child that must die with this process."""
    return {**(os.environ if env is None else env), PARENT_ENV: str(os.getpid())}


def die_with_parent(sig: int = signal.SIGTERM) -> str:
    """Arrange for ``sig`` when the parent named by ``JOBLINE_PARENT_PID`` dies.

    Returns the mechanism used: ``"pdeathsig"``, ``"watchdog"`` or ``"none"`` (not started by a
    Jobline parent). The variable is removed from the environment so this process's own
    children do not inherit a parent that is not theirs (their parent sets it anew).
    """
    raw = os.environ.pop(PARENT_ENV, None)
    if not raw:
        return "none"
    try:
        parent = int(raw)
    except ValueError:
        return "none"
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            ok = libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
        except (OSError, AttributeError):
            ok = False
        if ok:
            # The parent may have died between our fork and the prctl: then no signal comes.
            if os.getppid() != parent:
                os.kill(os.getpid(), sig)
            return "pdeathsig"

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_PERIOD_S)  # a liveness watch: no OS event to block on here
        os.kill(os.getpid(), sig)

    threading.Thread(target=watch, daemon=True, name="jobline-parent-watch").start()
    return "watchdog"


# --- the run record ------------------------------------------------------------------------


def run_file(home: Path) -> Path:
    return home / "run.json"


def _ident(pid: int) -> list[float] | None:
    import psutil

    try:
        return [pid, psutil.Process(pid).create_time()]
    except psutil.Error:
        return None


def _alive(ident: Any) -> psutil.Process | None:
    """The process ``[pid, create_time]`` names, if it still runs (not a recycled pid)."""
    import psutil

    try:
        pid, created = int(ident[0]), float(ident[1])
        p = psutil.Process(pid)
        if abs(p.create_time() - created) < 0.01 and p.status() != psutil.STATUS_ZOMBIE:
            return p
    except (psutil.Error, TypeError, ValueError, IndexError):
        pass
    return None


def record_run(home: Path, children: Mapping[str, int], *, embedded: bool) -> None:
    """Write (or rewrite, after a child was restarted) this run's record."""
    data = {"pid": _ident(os.getpid()), "embedded": embedded,
            "children": {n: _ident(pid) for n, pid in children.items()}}
    tmp = run_file(home).with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(run_file(home))


def clear_run(home: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        run_file(home).unlink()


def read_run(home: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(run_file(home).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class RunActive(RuntimeError):
    """Another ``jobline run`` is alive in this JOBLINE_HOME."""


def _stop_groups(procs: list[psutil.Process], wait_s: float, *, signal_first: bool) -> None:
    """SIGTERM each (its whole process group: a supervisor's workers too), wait, SIGKILL."""
    import psutil

    if signal_first:
        for p in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
                os.killpg(os.getpgid(p.pid), signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=wait_s)
    for p in alive:
        log.warning("leftover pid %d still running after %.0fs; killing", p.pid, wait_s)
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            os.killpg(os.getpgid(p.pid), signal.SIGKILL)
    psutil.wait_procs(alive, timeout=10)


def stop_services(home: Path) -> None:
    """Stop an embedded PostgreSQL/Valkey left running in ``home`` (a no-op if none runs)."""
    from jobline.local import EmbeddedPostgres, EmbeddedValkey

    for srv in (EmbeddedValkey(home / "valkey", persist=True), EmbeddedPostgres(home / "postgres")):
        try:
            srv.stop_leftover()
        except Exception as e:  # one server's failure must not keep the other running
            log.warning("stopping leftover %r failed: %s", srv, e)


def stop_leftovers(home: Path, *, wait_s: float = 40.0, services: bool = True,
                   signal_first: bool = True) -> list[str]:
    """Stop what the run record of ``home`` names and that still runs; returns their names.

    Raises :class:`RunActive` if the recorded ``jobline run`` itself is still alive (a second
    terminal in the same home must not kill the first one's processes).
    """
    data = read_run(home)
    if data is None:
        return []
    me = os.getpid()
    run = _alive(data.get("pid"))
    if run is not None and run.pid != me:
        raise RunActive(f"jobline run pid {run.pid} is already running in {home}")
    found = {n: p for n, ident in (data.get("children") or {}).items()
             if (p := _alive(ident)) is not None and p.pid != me}
    if found:
        log.warning("stopping leftovers of an earlier jobline run in %s: %s", home,
                    ", ".join(f"{n} pid {p.pid}" for n, p in found.items()))
        _stop_groups(list(found.values()), wait_s, signal_first=signal_first)
    names = sorted(found)
    if services and data.get("embedded"):
        stop_services(home)
        names.append("embedded services")
    clear_run(home)
    return names


def guard(home: Path, wait_s: float) -> int:
    """The guardian child of ``jobline run``: idles until the run dies (its parent-death
    signal), then waits for the run's other children to end (they got the same signal: a warm
    stop, workers drain) and stops the embedded services. A run that stopped cleanly removed
    its record first, so then there is nothing to do."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C is the run's to handle
    stop.wait()
    # The children got their own parent-death SIGTERM; a second one would make it cold.
    stop_leftovers(home, wait_s=wait_s, signal_first=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m jobline.lifeline")
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("guard")
    g.add_argument("--home", required=True)
    g.add_argument("--wait", type=float, default=40.0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)-7s %(name)s[%(process)d]: %(message)s")
    die_with_parent()
    return guard(Path(args.home), args.wait)


if __name__ == "__main__":
    sys.exit(main())
