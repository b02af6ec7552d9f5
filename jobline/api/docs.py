"""What an endpoint says about itself in the OpenAPI document, declared next to the handler.

:func:`documented` attaches an :class:`Op` to an endpoint function; :mod:`jobline.api.openapi`
walks the app's route table (paths, methods, path convertors) and turns each route's ``Op`` and
pydantic models into the document. So a route cannot be served without being documented (the
generator refuses an undocumented one), and a request or response shape is written once, as
the model the handler validates with or the tests validate responses against.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from jobline.shared.platform.config import Settings

#: A response or parameter schema: a pydantic model (referenced from ``components/schemas``)
#: or a literal JSON schema for the few shapes no model describes.
Schema = type[BaseModel] | dict[str, Any]
#: A query parameter; a callable when a bound comes from settings (e.g. the page size).
Param = dict[str, Any] | Callable[[Settings], dict[str, Any]]


@dataclass(frozen=True)
class Resp:
    description: str
    #: ``None``: no body (204).
    schema: Schema | None = None
    media_type: str = "application/json"
    headers: Mapping[str, Any] | None = None
    links: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Op:
    id: str
    summary: str
    #: Success (and other non-error) responses by status code.
    responses: Mapping[int, Resp]
    #: The request body's model (validated with it: JSON schema "validation" mode).
    body: type[BaseModel] | None = None
    #: Error statuses the handler itself can answer (500 is always added; 401/403/415/429 come
    #: from the auth middleware, :mod:`jobline.api.security_doc`). ``None``: the route answers
    #: every request itself (health checks, this document), no error shape.
    errors: tuple[int, ...] | None = ()
    params: tuple[Param, ...] = ()
    description: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


E = TypeVar("E", bound=Callable[..., Any])


def documented(op: Op) -> Callable[[E], E]:
    def attach(fn: E) -> E:
        fn.openapi = op  # type: ignore[attr-defined]
        return fn

    return attach


def op_of(endpoint: Any) -> Op | None:
    found = getattr(endpoint, "openapi", None)
    return found if isinstance(found, Op) else None


def query(name: str, schema: dict[str, Any], description: str | None = None,
          ) -> dict[str, Any]:
    """An optional query parameter."""
    out: dict[str, Any] = {"name": name, "in": "query"}
    if description is not None:
        out["description"] = description
    out["schema"] = schema
    return out


#: Shared parameter shapes.
UUID = {"type": "string", "format": "uuid"}
#: epoch ms or ISO-8601 (audit and metrics time filters)
TIME = {"type": "string", "description": "epoch ms or ISO-8601 with zone"}
OBJECT = {"type": "object"}


def page_size(settings: Settings) -> dict[str, Any]:
    return query("pageSize", {"type": "integer", "minimum": 1,
                              "maximum": settings.max_page_size, "default": 50})


def cursor(description: str = "nextCursor of the previous page",
           schema: dict[str, Any] = UUID) -> dict[str, Any]:
    return query("cursor", schema, description)
