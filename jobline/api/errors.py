"""One error shape for every failure: ``{"error": {"code", "message", "field"?}}``.

Core errors map generically through ``JoblineError.http_status``/``code``, so a new error class
needs no change here. Anything unexpected becomes a bare 500 whose details (the traceback) go to
the server log only: internals never leak to a client.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobline.shared.core.inputs import loc_to_field as loc_to_field
from jobline.shared.core.inputs import validation_failed as validation_failed
from jobline.shared.platform.errors import JoblineError, Unavailable, ValidationFailed

log = logging.getLogger("jobline.api")

_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
               413: "payload_too_large", 415: "unsupported_media_type"}


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class BadRequest(JoblineError):
    """The body is not parseable JSON (400), as opposed to well-formed but invalid (422)."""

    code = "bad_request"
    http_status = 400


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status, headers=headers)


async def jobline_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, JoblineError)
    if isinstance(exc, ValidationFailed):
        return error_response(exc.http_status, exc.code, exc.message, exc.field)
    headers = None
    if isinstance(exc, Unavailable):
        headers = {"Retry-After": str(exc.retry_after_s)}
        log.warning("%s %s -> 503: %s", request.method, request.url.path, exc)
    if exc.http_status >= 500 and not isinstance(exc, Unavailable):
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal", "internal error")
    return error_response(exc.http_status, exc.code, str(exc), headers=headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


Endpoint = Callable[[Request], Awaitable[Response]]


def endpoint(fn: Endpoint) -> Endpoint:
    """Map every exception an endpoint raises to the error shape.

    Done here rather than with a Starlette ``Exception`` handler because Starlette re-raises
    after such a handler ran (so the server logs it twice and test transports raise).
    """

    @functools.wraps(fn)
    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except JoblineError as e:
            return await jobline_error(request, e)
        except HTTPException as e:
            return await http_error(request, e)
        except (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError):
            # text PostgreSQL cannot store or compare (a NUL byte) that slipped past a shell's
            # own validation: the client's input, not our failure
            return error_response(400, "validation_error",
                                  "input contains characters that cannot be stored (NUL)")
        except Exception as e:
            log.error("%s %s failed", request.method, request.url.path, exc_info=e)
            return error_response(500, "internal", "internal error")

    return wrapper


def by_method(path: str, handlers: dict[str, Endpoint], name: str) -> Route:
    """One route serving several methods (HEAD follows GET)."""

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)  # the Route already refused other methods

    # The OpenAPI generator documents each method from its own handler.
    dispatch.handlers = dict(handlers)  # type: ignore[attr-defined]
    return Route(path, dispatch, methods=list(handlers), name=name)


#: For errors raised outside endpoints (router 404/405).
EXCEPTION_HANDLERS: dict[Any, Any] = {
    JoblineError: jobline_error,
    HTTPException: http_error,
}
