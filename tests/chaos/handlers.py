"""Handlers for the chaos suite, loaded into real worker processes with ``--app chaos.handlers``.

``chaos.work`` performs a visible side effect (one line appended to ``$JOBLINE_HOME/effects.log``)
after its work, so the checker can count executions independently of the database. With
``dieAfterEffect`` the first execution SIGKILLs its own worker right after the side effect and
before the outcome can be written: the window at-least-once delivery is about.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from jobline.shared.platform.config import Settings
from jobline.worker.registry import JobContext, job

EFFECTS = "effects.log"


def _effect(ctx: JobContext, cid: str) -> None:
    # O_APPEND writes of one short line are atomic, so concurrent workers never interleave.
    line = f"{cid} {ctx.id} {ctx.attempt} {os.getpid()}\n".encode()
    fd = os.open(Settings().home / EFFECTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


@job("chaos.work", queue="default")
async def work(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    cid = str(payload["cid"])
    await asyncio.sleep(int(payload.get("ms", 0)) / 1000)
    _effect(ctx, cid)
    if payload.get("dieAfterEffect"):
        marker = Path(Settings().home) / f"died-{cid}"
        if not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
    return {"cid": cid}


@job("chaos.stubborn", queue="default")
async def stubborn(payload: dict[str, Any], ctx: JobContext) -> None:
    """Ignores every cancellation: a handler the worker cannot stop, only abandon."""
    while True:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)


def gate(cid: str, execution: int) -> str:
    """The file that lets execution ``execution`` (the fencing token) of ``cid`` finish."""
    return f"gate-{cid}-{execution}"


@job("chaos.gated", queue="default")
async def gated(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Runs until the test opens this execution's gate (a file in ``$JOBLINE_HOME``), then
    performs its side effect: the test decides which run finishes when, without timing guesses.
    It ignores ``ctx.cancelled`` on purpose: a run cut off from the stores must be able to
    finish late and be fenced."""
    cid = str(payload["cid"])
    home = Path(Settings().home)
    # a file the test creates from another process: there is nothing to block on
    while not (home / gate(cid, ctx.execution)).exists():  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    _effect(ctx, cid)
    return {"cid": cid}
