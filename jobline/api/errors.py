"""One error shape for every failure: ``{"error": {"code", "message", "field"?, "errors"?}}``.

A validation failure names its first field in ``field``/``message`` and lists every failed field
in ``errors: [{field, message}, ...]``, so a client fixes all its mistakes in one round trip.
Client mistakes (4xx) are logged at INFO without a traceback; server faults (5xx) at ERROR with
one.

Core errors map generically through ``JoblineError.http_status``/``code``, so a new error class
needs no change here. Anything unexpected becomes a bare 500 whose details (the traceback) go to
the server log only: internals never leak to a client.
"""

from __future__ import annotations

import functools
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import asyncpg
import orjson
import pydantic
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from jobline.api.context import add_read_headers
from jobline.shared.core.inputs import loc_to_field as loc_to_field
from jobline.shared.core.inputs import validation_failed as validation_failed
from jobline.shared.platform.errors import (
    JoblineError,
    Unavailable,
    UnknownParameter,
    ValidationFailed,
)

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
                   headers: Mapping[str, str] | None = None,
                   errors: Sequence[tuple[str, str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    if errors is not None:
        body["errors"] = [{"field": f, "message": m} for f, m in errors]
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def log_client_error(request: Request, status: int, message: str) -> None:
    """A client's mistake: worth a line (INFO) for whoever debugs the client, never a
    traceback (it is not our failure)."""
    log.info("%s %s -> %d: %s", request.method, request.url.path, status, message)


async def jobline_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, JoblineError)
    if isinstance(exc, ValidationFailed):
        log_client_error(request, exc.http_status, str(exc))
        return error_response(exc.http_status, exc.code, exc.message, exc.field,
                              errors=exc.errors)
    field = getattr(exc, "field", None)
    if field is not None and exc.http_status < 500:
        log_client_error(request, exc.http_status, str(exc))
        return error_response(exc.http_status, exc.code, str(getattr(exc, "message", exc)),
                              field)
    headers = None
    if isinstance(exc, Unavailable):
        headers = {"Retry-After": str(exc.retry_after_s)}
        log.warning("%s %s -> 503: %s", request.method, request.url.path, exc)
    if exc.http_status >= 500 and not isinstance(exc, Unavailable):
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal", "internal error")
    if exc.http_status < 500:
        log_client_error(request, exc.http_status, str(exc))
    return error_response(exc.http_status, exc.code, str(exc), headers=headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    if exc.status_code < 500:
        log_client_error(request, exc.status_code, str(exc.detail))
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


#: A path parameter in a route path: ``{jobId:uuid}`` -> ("jobId", "uuid").
_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")

Endpoint = Callable[[Request], Awaitable[Response]]


def endpoint(fn: Endpoint) -> Endpoint:
    """Map every exception an endpoint raises to the error shape.

    Done here rather than with a Starlette ``Exception`` handler because Starlette re-raises
    after such a handler ran (so the server logs it twice and test transports raise).
    """

    @functools.wraps(fn)
    async def wrapper(request: Request) -> Response:
        try:
            if request.query_params:
                check_documented_query(request, wrapper)
            response = await fn(request)
        except JoblineError as e:
            return await jobline_error(request, e)
        except HTTPException as e:
            return await http_error(request, e)
        except (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError):
            # text PostgreSQL cannot store or compare (a NUL byte) that slipped past a shell's
            # own validation: the client's input, not our failure
            message = "input contains characters that cannot be stored (NUL)"
            log_client_error(request, 400, message)
            return error_response(400, "validation_error", message)
        except Exception as e:
            log.error("%s %s failed", request.method, request.url.path, exc_info=e)
            return error_response(500, "internal", "internal error")
        if "state" in request.scope:  # a routed read noted its source (api/context.read)
            add_read_headers(request, response)
        return response

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


def install_malformed_id_hint(app: Starlette) -> None:
    """Where no route matched, say so when the path is an id route with a malformed id.

    Routes take ids through Starlette's ``uuid`` convertor, so ``GET /api/v1/jobs/abc`` matches
    no route and would get the router's bare "Not Found", which reads as "no such job" or
    "no such endpoint". Checked only after routing failed, so it never shadows a route (or the
    dashboard fallback, which only serves non-API paths)."""
    patterns: list[tuple[re.Pattern[str], list[str]]] = []
    for route in app.router.routes:
        path = getattr(route, "path", "")
        ids = [m[1] for m in _PARAM.finditer(path) if m[2] == "uuid"]
        if ids:
            rx = _PARAM.sub(lambda m: f"(?P<{m[1]}>[^/]+)", re.escape(path).replace(r"\{", "{")
                            .replace(r"\}", "}"))
            patterns.append((re.compile(rx), ids))
    not_found = app.router.default

    async def fallback(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for rx, ids in patterns:
                m = rx.fullmatch(scope["path"])
                if m is None:
                    continue
                for name in ids:
                    try:
                        uuid.UUID(m[name])
                    except ValueError:
                        message = f"{m[name]!r} is not a valid id (a UUID)"
                        response = error_response(404, "not_found", message, name)
                        log_client_error(Request(scope, receive), 404, f"{name}: {message}")
                        await response(scope, receive, send)
                        return
        await not_found(scope, receive, send)

    app.router.default = fallback


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def check_documented_query(request: Request, endpoint_fn: Any) -> None:
    """Refuse query parameters the route's OpenAPI operation does not declare (400, every
    unknown one listed), on every documented route: one rule instead of a check per handler,
    and the document stays the truth about what a route reads. Routes that answer every request
    themselves (``errors=None``: health checks, the document) are left alone."""
    from jobline.api.docs import op_of

    op = op_of(endpoint_fn)
    if op is None or op.errors is None:
        return
    from jobline.api.context import ctx

    params = [p(ctx(request).settings) if callable(p) else p for p in op.params]
    wire = [p["name"] for p in params if p.get("in") == "query"]
    known = set(wire) | {_snake(n) for n in wire}
    unknown = [p for p in dict.fromkeys(request.query_params.keys()) if p not in known]
    if unknown:
        hint = ("unknown query parameter; known: " + ", ".join(wire) if wire
                else "unknown query parameter; this route takes none")
        raise UnknownParameter(unknown[0], hint, [(p, hint) for p in unknown])


def check_query_params(params: Iterable[str], model: type[pydantic.BaseModel]) -> None:
    """Refuse query parameters ``model`` does not declare (400, every unknown one listed): a typo
    like ``?queeu=email`` would otherwise be ignored and the whole unfiltered list returned."""
    fields = model.model_fields
    wire = [f.alias or name for name, f in fields.items()]
    known = set(wire) | set(fields)  # the snake_case names are accepted too (populate_by_name)
    unknown = [p for p in dict.fromkeys(params) if p not in known]
    if unknown:
        hint = "unknown query parameter; known: " + ", ".join(wire)
        raise UnknownParameter(unknown[0], hint, [(p, hint) for p in unknown])
