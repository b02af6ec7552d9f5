"""AI operations over the system's own history (issue 17): models and heuristics computed from
data (docs/ai.md). The model libraries (LightGBM, scikit-learn, Prophet) are the ``[ai]`` extra,
imported lazily: a deployment without them (the Lambda package, the slim container) serves
everything else, and the endpoints that need them say what to install."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from jobline.shared.platform.errors import Unavailable

P = ParamSpec("P")
R = TypeVar("R")


def needs_ai_extra(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """A missing model library becomes a 503 naming the extra, not an internal error."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except ImportError as e:
            raise Unavailable(f"{e.name or 'a model library'} is not installed in this "
                              f"deployment: pip install 'jobline[ai]'", retry_after_s=3600
                              ) from None

    return wrapper
