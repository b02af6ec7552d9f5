"""Core errors -> GraphQL errors with ``extensions.code``; anything unexpected is masked.

``BAD_USER_INPUT`` carries ``extensions.field``; ``UNAVAILABLE`` (e.g. a queue over its backlog
cap) carries ``extensions.retryAfterS``. An error without a code is an internal one: its message
is replaced by "internal error" (:func:`mask_error`), so no stack trace or SQL leaves.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import pydantic
from graphql import GraphQLError

from jobline.shared.core.inputs import validation_failed
from jobline.shared.platform.errors import (
    IllegalTransition,
    JoblineError,
    NotFound,
    Unavailable,
    ValidationFailed,
)
from jobline.shared.security.auth import Forbidden

P = ParamSpec("P")
T = TypeVar("T")

CODES: list[tuple[type[Exception], str]] = [
    (ValidationFailed, "BAD_USER_INPUT"), (NotFound, "NOT_FOUND"),
    (IllegalTransition, "CONFLICT"), (Forbidden, "FORBIDDEN")]


def to_graphql_error(e: Exception) -> GraphQLError:
    if isinstance(e, pydantic.ValidationError):
        e = validation_failed(e)
    code = next((c for cls, c in CODES if isinstance(e, cls)), None)
    if code is None and isinstance(e, JoblineError):
        code = e.code.upper()
    ext: dict[str, Any] = {"code": code or "INTERNAL_SERVER_ERROR"}
    if isinstance(e, ValidationFailed):
        ext["field"] = e.field
    if isinstance(e, Unavailable):
        ext["retryAfterS"] = e.retry_after_s
    return GraphQLError(str(e), extensions=ext)


def domain(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Core errors -> GraphQL errors with ``extensions.code``."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except (JoblineError, pydantic.ValidationError) as e:
            raise to_graphql_error(e) from None

    return wrapper


def mask_error(error: GraphQLError) -> bool:
    ext = error.extensions or {}
    return "code" not in ext and error.original_error is not None
