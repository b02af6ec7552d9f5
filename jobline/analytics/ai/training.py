"""One training entry point for every caller (CLI, REST, GraphQL, the scheduled job).

The retry advisor's recovery table trains first: it is plain SQL and JSON, so it is refreshed
even where the ``[ai]`` extra is missing or the history is still too small for the failure
model (which then raises as before, with the advisor already updated).
"""

from __future__ import annotations

from typing import Any

from jobline.analytics.ai import predict, retry
from jobline.shared.platform.connections import Deps


async def train_all(deps: Deps, *, days: int = predict.DEFAULT_DAYS) -> dict[str, Any]:
    advisor = await retry.train(deps, days=days)
    out = await predict.train(deps, days=days)
    return {**out, "retryAdvisor": advisor}
