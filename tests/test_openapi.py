"""The OpenAPI document is generated from the route table: every served route and method has a
declared operation, and a route without one makes the build fail (instead of going undocumented).
(test_api.py::test_openapi_covers_every_route checks the served document; test_fuzz_api.py fuzzes
the API against it.)"""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobline.api.app import create_app
from jobline.api.docs import Op, Resp, documented
from jobline.api.openapi import build_openapi, operations
from jobline.shared.platform.config import Settings


async def _plain(request: Request) -> Response:
    return Response()


def test_every_route_of_the_app_has_an_operation_with_a_unique_id(settings: Settings) -> None:
    app = create_app(settings)
    ops = list(operations(app.routes))
    ids = [op.id for _, _, op, _ in ops]
    assert len(ids) == len(set(ids)) and len(ids) >= 45
    doc = build_openapi(settings, app.routes)
    assert sorted(op["operationId"] for item in doc["paths"].values()
                  for op in item.values()) == sorted(ids)


def test_an_undocumented_route_fails_the_build(settings: Settings) -> None:
    with pytest.raises(RuntimeError, match="GET /x is not documented"):
        build_openapi(settings, [Route("/x", _plain, methods=["GET"])])
    op = Op("x", "An example", responses={200: Resp("Fine", {"type": "object"})})
    doc = build_openapi(settings, [Route("/x/{id:uuid}", documented(op)(_plain),
                                         methods=["GET"])])
    item = doc["paths"]["/x/{id}"]["get"]
    assert item["parameters"] == [{"name": "id", "in": "path", "required": True,
                                   "schema": {"type": "string", "format": "uuid"}}]
    assert set(item["responses"]) >= {"200", "500"}
