"""Retry delays: exponential backoff with full jitter.

delay(n) = uniform(0, min(cap, base * factor**(n-1))) for the n-th failed attempt. Full jitter
spreads a burst of failures (a flapping dependency) across the window instead of retrying in
lockstep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Backoff:
    base_ms: int = 1_000
    factor: float = 2.0
    cap_ms: int = 3_600_000
    jitter: bool = True

    def ceiling_ms(self, attempt: int) -> int:
        """The upper bound of the delay after failed attempt number ``attempt`` (1-based)."""
        exp = max(attempt - 1, 0)
        # cap before exponentiating far: factor**exp overflows float for huge attempt counts
        if exp > 64:
            return self.cap_ms
        return int(min(self.cap_ms, self.base_ms * (self.factor**exp)))

    def delay_ms(self, attempt: int, rng: random.Random) -> int:
        ceiling = self.ceiling_ms(attempt)
        return rng.randint(0, ceiling) if self.jitter else ceiling

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None, default: Backoff) -> Backoff:
        if not raw:
            return default
        return cls(
            base_ms=int(raw.get("baseMs", default.base_ms)),
            factor=float(raw.get("factor", default.factor)),
            cap_ms=int(raw.get("capMs", default.cap_ms)),
            jitter=bool(raw.get("jitter", default.jitter)),
        )

    def to_json(self) -> dict[str, Any]:
        return {"baseMs": self.base_ms, "factor": self.factor, "capMs": self.cap_ms,
                "jitter": self.jitter}
