"""The OpenAPI 3.1 document, generated from the app's route table and the pydantic models.

Paths, methods and path parameters come from the Starlette routes (``{jobId:uuid}`` is a uuid
parameter); each endpoint declares its operation next to its handler
(:func:`jobline.api.docs.documented`); request and response schemas come from the pydantic
models via ``models_json_schema``, with refs pointing into ``components/schemas`` (pydantic's
``$defs`` hoisted there), so the document and the validators cannot disagree. Limits that come
from settings (bulk size, page size) are written in per app; the security pass
(:mod:`jobline.api.security_doc`) adds the auth responses from the middleware's rule table.
A route without a declared operation makes the build fail, and a test checks every route is
covered.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.convertors import UUIDConvertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from jobline.api import batches as b
from jobline.api import schemas as s
from jobline.api.context import READ_HEADERS, READ_ROUTED
from jobline.api.docs import OBJECT, UUID, Op, Resp, documented, op_of
from jobline.api.errors import JSONResponse, endpoint
from jobline.api.security_doc import add_security
from jobline.shared.core.inputs import JOB_TYPE_PATTERN, QUEUE_PATTERN
from jobline.shared.platform.config import Settings

_REF = "#/components/schemas/{model}"

_ERROR_TEXT = {
    400: "Malformed JSON body",
    404: "Unknown (or malformed) id",
    409: "The job's status does not allow this transition",
    413: "Body, payload or batch too large",
    422: "Validation failed; `error.field` names the field",
    500: "Internal error (details only in the server log)",
    503: "A backing store is unavailable; retry after `Retry-After` seconds",
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}}

#: Path parameters whose schema is more than their convertor says (same name, same meaning on
#: every route).
_PATH_PARAMS: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "pattern": QUEUE_PATTERN},
    "jobType": {"type": "string", "pattern": JOB_TYPE_PATTERN},
    "scheduleId": {"type": "string", "format": "uuid"},
}

#: Request models whose ``jobs`` list is bounded by ``settings.max_bulk_jobs``.
_BULK_BOUNDED: tuple[type[BaseModel], ...] = (s.BulkSubmitIn, b.BatchIn)

_GRAPHQL_TEXT = ("GraphQL (schema.graphql); websockets: graphql-transport-ws or graphql-ws with "
                 "{\"apiKey\"} in connection_init")
#: Routes the REST shell mounts but does not own (the GraphQL view), by (route name, method).
_MOUNTED: dict[tuple[str, str], Op] = {
    ("graphql", "GET"): Op(
        "graphqlGet", "GraphQL query (or GraphiQL in dev mode)", description=_GRAPHQL_TEXT,
        responses={200: Resp("GraphQL result", OBJECT),
                   # GET without a query when GraphiQL is off (outside dev mode): a plain 404
                   404: Resp("GraphiQL is off", {"type": "string"}, media_type="text/plain")},
        errors=(400,)),
    ("graphql", "POST"): Op(
        "graphqlPost", "GraphQL query or mutation", description=_GRAPHQL_TEXT,
        responses={200: Resp("GraphQL result", OBJECT)}, errors=(400,)),
}


def _path_param(name: str, convertor: Any) -> dict[str, Any]:
    if name in _PATH_PARAMS:
        schema = dict(_PATH_PARAMS[name])
    elif isinstance(convertor, UUIDConvertor):
        schema = dict(UUID)
    else:
        schema = {"type": "string"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def operations(routes: Sequence[BaseRoute]) -> Iterator[tuple[str, str, Op, list[dict[str, Any]]]]:
    """(path, method, operation, path parameters) for every documented route and method."""
    for route in routes:
        if isinstance(route, WebSocketRoute):
            continue  # GraphQL subscriptions: documented under GET/POST /graphql
        if not isinstance(route, Route):
            raise TypeError(f"cannot document {route!r}")
        handlers = getattr(route.endpoint, "handlers", None)  # jobline.api.errors.by_method
        params = [_path_param(n, c) for n, c in route.param_convertors.items()]
        for method in sorted((route.methods or set()) - {"HEAD"}):
            handler = handlers[method] if handlers is not None else route.endpoint
            op = op_of(handler) or _MOUNTED.get((route.name, method))
            if op is None:
                raise RuntimeError(f"{method} {route.path} is not documented: declare its "
                                   "operation with jobline.api.docs.documented")
            yield route.path_format, method, op, params


def build_openapi(settings: Settings, routes: Sequence[BaseRoute]) -> dict[str, Any]:
    ops = list(operations(routes))
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    for _, _, op, _ in ops:
        if op.body is not None:
            wanted[(op.body, "validation")] = None
        for r in op.responses.values():
            if isinstance(r.schema, type):
                wanted[(r.schema, "serialization")] = None
    wanted[(s.ErrorOut, "serialization")] = None
    refs, top = models_json_schema(list(wanted), ref_template=_REF, by_alias=True)
    components: dict[str, Any] = dict(top.get("$defs", {}))

    # Settings-dependent bounds, so generated clients and fuzzers respect this deployment.
    for model in _BULK_BOUNDED:
        if (model, "validation") in refs:
            name = refs[(model, "validation")]["$ref"].rsplit("/", 1)[-1]
            components[name]["properties"]["jobs"]["maxItems"] = settings.max_bulk_jobs

    def schema_of(schema: Any, mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(refs[(schema, mode)]) if isinstance(schema, type) else dict(schema)

    error_schema = schema_of(s.ErrorOut, "serialization")

    def response(r: Resp) -> dict[str, Any]:
        out: dict[str, Any] = {"description": r.description}
        if r.schema is not None:
            out["content"] = {r.media_type: {"schema": schema_of(r.schema, "serialization")}}
        if r.headers:
            out["headers"] = dict(r.headers)
        if r.links:
            out["links"] = dict(r.links)
        return out

    def errors(codes: tuple[int, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for code in (*codes, 500):
            out[str(code)] = response(Resp(_ERROR_TEXT[code], s.ErrorOut,
                                           headers=RETRY_AFTER if code == 503 else None))
        return out

    paths: dict[str, Any] = {}
    for path, method, op, path_params in ops:
        item: dict[str, Any] = {"operationId": op.id, "summary": op.summary}
        if op.description:
            item["description"] = op.description
        params = [*path_params, *(p(settings) if callable(p) else dict(p) for p in op.params)]
        if params:
            item["parameters"] = params
        if op.body is not None:
            item["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": schema_of(op.body, "validation")}}}
        item["responses"] = {str(code): response(r) for code, r in op.responses.items()}
        if op.id in READ_ROUTED:
            ok = item["responses"]["200"]
            ok["headers"] = {**ok.get("headers", {}), **READ_HEADERS}
        if op.errors is not None:
            item["responses"].update(errors(op.errors))
        item.update(op.extra)
        paths.setdefault(path, {})[method.lower()] = item
    return add_security({
        "openapi": "3.1.0",
        "info": {"title": "Jobline", "version": "1", "description":
                 "Durable background jobs: PostgreSQL is the truth, Redis dispatches."},
        "paths": paths,
        "components": {"schemas": components},
    }, error_schema)


def routes(settings: Settings) -> list[Route]:
    # Built once per app, on first request: it depends only on the settings and the app's
    # route table, which is complete by then.
    doc: list[bytes] = []

    @documented(Op("openapi", "This document", errors=None,
                   responses={200: Resp("OpenAPI 3.1", OBJECT)}))
    @endpoint
    async def openapi(request: Request) -> Response:
        if not doc:
            doc.append(bytes(JSONResponse(build_openapi(settings, request.app.routes)).body))
        return Response(doc[0], media_type="application/json")

    return [Route("/api/v1/openapi.json", openapi, methods=["GET"], name="openapi")]
