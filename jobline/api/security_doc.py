"""The security part of the OpenAPI document: the API-key scheme and the responses every
protected operation may give before its handler runs (401, 403, 429; 415 for bodies).

Added as a pass over the built document so each operation need not repeat them, and derived from
the same :func:`jobline.api.auth.required_role` table the middleware enforces.
"""

from __future__ import annotations

import re
from typing import Any

from jobline.api.auth import required_role

_TEXT = {
    401: "No API key, or an unknown or revoked one",
    403: "The key's role may not do this (`error.message` names the role needed)",
    415: "The body is not `application/json`",
    429: "Request rate of this API key exceeded; retry after `Retry-After` seconds",
}


def add_security(doc: dict[str, Any], error_schema: dict[str, Any]) -> dict[str, Any]:
    doc.setdefault("components", {})["securitySchemes"] = {
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "the same API key as a Bearer token"},
    }
    for path, item in doc.get("paths", {}).items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            role = required_role(method.upper(), concrete)
            responses = op["responses"]
            codes = [415] if "requestBody" in op else []
            if role is None:
                op["security"] = []
            else:
                op["security"] = [{"apiKey": []}, {"bearer": []}]
                op["description"] = (op.get("description", "") +
                                     f"\n\nNeeds role `{role.value}`.").strip()
                codes += [401, 403, 429]
            for code in codes:
                resp: dict[str, Any] = {
                    "description": _TEXT[code],
                    "content": {"application/json": {"schema": error_schema}}}
                if code == 429:
                    resp["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                       "description": "Seconds to wait"}}
                responses.setdefault(str(code), resp)
    return doc
