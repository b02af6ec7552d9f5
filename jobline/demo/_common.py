"""Helpers shared by the demo handlers: payload validation and crash-safe output files."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, TypeGuard

from jobline.shared.platform.config import Settings
from jobline.shared.platform.errors import Unrecoverable
from jobline.worker.registry import JobContext


def invalid(message: str) -> Unrecoverable:
    """A payload problem: retrying the same payload can never succeed."""
    return Unrecoverable(message, error_type="validation_error")


def require_object(payload: object) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise invalid("payload must be a JSON object")
    return payload


def is_int(value: object) -> TypeGuard[int]:
    # bool is an int subclass; `{"ms": true}` is a client bug, not 1 ms.
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    return is_int(value) or isinstance(value, float)


def require_int(payload: dict[str, Any], key: str, lo: int, hi: int,
                default: int | None = None) -> int:
    value = payload.get(key, default)
    if value is None:
        raise invalid(f"{key} is required")
    if not is_int(value) or not lo <= value <= hi:
        raise invalid(f"{key} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def output_dir(kind: str) -> Path:
    # Settings() is built per call (not cached) so JOBLINE_HOME can differ between tests/processes.
    path = Settings().home / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def output_stem(ctx: JobContext | None) -> str:
    # Keyed by job id so a retried attempt overwrites its own earlier output instead of
    # leaving one orphan file per attempt.
    return str(ctx.id) if ctx is not None else uuid.uuid4().hex


def atomic_write(path: Path, data: bytes) -> None:
    """Write via rename so a worker killed mid-write never leaves a truncated file behind."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
