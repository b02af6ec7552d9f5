"""Request rate per API key: a token bucket in Redis shared by every API replica.

``JOBLINE_RATE_PER_KEY`` ("600/60s": 600 requests per 60 seconds, bursts up to 600) caps each key;
the REST middleware calls :func:`admit` right after authentication. A refused request is answered
429 with ``Retry-After``. The bucket lives in Redis only: losing Redis refills every bucket, which
errs towards letting requests through (documented in docs/security.md).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from importlib import resources

from jobline.shared.core.jobs import translate_errors
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import ConfigError, JoblineError

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)?\s*(ms|s|m|h)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_SCRIPT = resources.files("jobline.shared.dispatch.lua").joinpath("key_rate.lua").read_text()


class RateLimited(JoblineError):
    """Too many requests for this API key (HTTP 429 + Retry-After)."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class KeyRate:
    limit: int
    window_ms: int


def parse_rate(raw: str) -> KeyRate | None:
    """"600/60s", "10/s", "100/1m" -> KeyRate; "" or "0/..." -> None (no limit)."""
    if not raw.strip():
        return None
    m = _SPEC.match(raw)
    if m is None:
        raise ConfigError(f"JOBLINE_RATE_PER_KEY: expected e.g. '600/60s', got {raw!r}")
    limit = int(m.group(1))
    window_ms = int(m.group(2) or 1) * _UNIT_MS[m.group(3) or "s"]
    if limit == 0:
        return None
    if window_ms <= 0:
        raise ConfigError("JOBLINE_RATE_PER_KEY: the window must be positive")
    return KeyRate(limit, window_ms)


def bucket_key(deps: Deps, key_id: str) -> str:
    return f"{deps.settings.redis_prefix}:keyrate:{key_id}"


@translate_errors
async def admit(deps: Deps, key_id: str, rate: KeyRate) -> None:
    """Take one token from ``key_id``'s bucket or raise :class:`RateLimited`."""
    script = deps.redis.register_script(_SCRIPT)  # EVALSHA, loading the script once per server
    wait_ms = int(await script(keys=[bucket_key(deps, key_id)],
                               args=[deps.clock.now_ms(), rate.limit, rate.window_ms]))
    if wait_ms > 0:
        raise RateLimited(
            f"rate limit of {rate.limit} requests per {rate.window_ms} ms for this API key "
            "exceeded", retry_after_s=max(1, math.ceil(wait_ms / 1000)))
