"""Masking of secrets in job payloads and results before they leave through a read path.

One function, :func:`mask`, used by every shell that shows stored data to a person (REST job
reads and listings, the DLQ listing and CSV export, events and so the audit log, log lines). It
replaces the *value* of every dict entry whose key matches one of the configured patterns
(``JOBLINE_MASK_KEYS``, case-insensitive substrings) with :data:`MASK`, at any depth of nested
dicts and lists. Handlers are never given masked data: the worker reads the stored payload.

Masking is by key name only. A secret inside a free-text value ("my password is x") or under an
innocent key is not found; docs/security.md says so.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from typing import Any

MASK = "***"

#: Substrings of keys whose values are secrets (matched case-insensitively anywhere in the key).
DEFAULT_MASK_KEYS: tuple[str, ...] = (
    "password", "passwd", "pwd", "secret", "token", "authorization", "api_key", "apikey",
    "api-key", "private_key", "credential", "cookie", "session", "ssn", "card_number", "cvv",
)


@functools.lru_cache(maxsize=32)
def _pattern(keys: tuple[str, ...]) -> re.Pattern[str] | None:
    if not keys:
        return None
    return re.compile("|".join(re.escape(k) for k in keys), re.IGNORECASE)


def mask(value: Any, keys: Sequence[str] = DEFAULT_MASK_KEYS) -> Any:
    """``value`` with every dict entry whose key contains one of ``keys`` replaced by ``***``.

    Returns a new structure (the input is not modified); scalars come back unchanged.
    """
    pattern = _pattern(tuple(keys))
    if pattern is None:
        return value
    return _mask(value, pattern)


def _mask(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, dict):
        return {k: MASK if pattern.search(str(k)) else _mask(v, pattern)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask(v, pattern) for v in value]
    return value


@functools.lru_cache(maxsize=32)
def _text_pattern(keys: tuple[str, ...]) -> re.Pattern[str] | None:
    if not keys:
        return None
    # the same shape as the SQL function jobline_mask_secrets (migration 0006) masks in events
    names = "|".join(re.escape(k) for k in keys)
    return re.compile(
        rf"""((?:{names})[\w-]*["']?\s*[:=]\s*["']?)(Bearer\s+)?[^\s,;&"'}}]+""", re.IGNORECASE)


def mask_text(text: str | None, keys: Sequence[str] = DEFAULT_MASK_KEYS) -> str | None:
    """Free text (an error message) with ``key=value`` / ``"key": "value"`` secrets masked."""
    pattern = _text_pattern(tuple(keys))
    if text is None or pattern is None:
        return text
    return pattern.sub(lambda m: m.group(1) + MASK, text)


class MaskingFilter(logging.Filter):
    """Masks dict/list arguments of log records (``log.info("job %s", payload)``), so a log
    line never carries a secret a handler or shell passed as structured data."""

    def __init__(self, keys: Sequence[str] = DEFAULT_MASK_KEYS) -> None:
        super().__init__()
        self.keys = tuple(keys)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, dict):
            record.args = mask(args, self.keys)
        elif isinstance(args, tuple) and any(isinstance(a, (dict, list)) for a in args):
            record.args = tuple(mask(a, self.keys) if isinstance(a, (dict, list)) else a
                                for a in args)
        return True


def install_log_filter(keys: Sequence[str] = DEFAULT_MASK_KEYS,
                       logger: logging.Logger | None = None) -> MaskingFilter:
    """Attach a :class:`MaskingFilter` to the handlers of ``logger`` (default: root) and to the
    ``jobline`` logger, so records are masked whatever handler writes them."""
    f = MaskingFilter(keys)
    target = logger or logging.getLogger()
    for h in target.handlers:
        if not any(isinstance(x, MaskingFilter) for x in h.filters):
            h.addFilter(f)
    jl = logging.getLogger("jobline")
    if not any(isinstance(x, MaskingFilter) for x in jl.filters):
        jl.addFilter(f)
    return f
