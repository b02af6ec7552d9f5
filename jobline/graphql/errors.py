"""Core errors -> GraphQL errors with ``extensions.code``; anything unexpected is masked.

``BAD_USER_INPUT`` carries ``extensions.field`` (and ``extensions.errors``, every
``{field, message}`` when several fields failed); ``UNAVAILABLE`` (e.g. a queue over its backlog
cap) carries ``extensions.retryAfterS``. A variable graphql-core could not coerce (``$n: Int!``
given ``"ten"``, a missing required variable) is ``BAD_USER_INPUT`` too, its field the variable
path (``$in.priority``): typed clients always send variables, so such a mistake must not read as
a server bug. An error without a code raised while resolving is an internal one: its message is
replaced by "internal error" (:class:`JoblineMaskErrors`), so no stack trace or SQL leaves.

Logging (:func:`log_errors`): client mistakes (a code other than INTERNAL_SERVER_ERROR, a
document that does not validate) at INFO without a traceback; server faults at ERROR with one.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import pydantic
from graphql import GraphQLError, VariableDefinitionNode
from strawberry.extensions import MaskErrors

from jobline.shared.core.inputs import validation_failed
from jobline.shared.platform.errors import (
    IllegalTransition,
    JoblineError,
    NotFound,
    Unavailable,
    ValidationFailed,
)
from jobline.shared.security.auth import Forbidden

log = logging.getLogger("jobline.graphql")

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
        if len(e.errors) > 1:
            ext["errors"] = [{"field": f, "message": m} for f, m in e.errors]
    elif (field := getattr(e, "field", None)) is not None:
        ext["field"] = field
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


#: graphql-core's wording for a variable it could not coerce: "Variable '$in' has invalid value
#: at .priority: ..." (the path after "at" is printed from the variable's own path list).
_VARIABLE = re.compile(r"^Variable '\$(?P<name>\w+)' has invalid (?:default )?value"
                       r"(?: at (?P<path>[^:]*))?:")


def variable_error(error: GraphQLError) -> GraphQLError | None:
    """``error`` as ``BAD_USER_INPUT`` if it is graphql-core's refusal of a variable's value,
    else None. Recognised by its node (the variable's definition) as well as its wording."""
    if not (error.nodes and isinstance(error.nodes[0], VariableDefinitionNode)):
        return None
    m = _VARIABLE.match(error.message)
    if m is None:
        return None
    path = (m["path"] or "").strip()
    field = f"${m['name']}{path}"  # path is "", ".priority" or "[2].jobType"
    return GraphQLError(error.message, nodes=error.nodes, source=error.source,
                        positions=error.positions, path=error.path,
                        extensions={"code": "BAD_USER_INPUT", "field": field})


def mask_error(error: GraphQLError) -> bool:
    ext = error.extensions or {}
    return "code" not in ext and error.original_error is not None


def is_client_error(error: GraphQLError) -> bool:
    """A mistake in the request (bad input, unknown id, missing role, invalid document), as
    opposed to a server fault."""
    code = (error.extensions or {}).get("code")
    if code is not None:
        return code not in ("INTERNAL_SERVER_ERROR", "INTERNAL")
    # no code: a document that failed parsing/validation (no original error), or a variable
    return error.original_error is None or variable_error(error) is not None


def log_errors(errors: list[GraphQLError]) -> None:
    for error in errors:
        if (error.extensions or {}).get("code") == "UNAVAILABLE":
            log.warning("graphql UNAVAILABLE: %s", error.message)  # as REST logs its 503s
        elif is_client_error(error):
            code = (error.extensions or {}).get("code") or "GRAPHQL_VALIDATION_FAILED"
            log.info("graphql %s: %s", code, error.message)
        else:
            log.error("graphql resolver failed: %s", error.message,
                      exc_info=error.original_error or error)


class JoblineMaskErrors(MaskErrors):
    """Mask internal errors; turn graphql-core's variable errors into ``BAD_USER_INPUT``."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=mask_error, error_message="internal error")

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return super()._process_errors([variable_error(e) or e for e in errors])
