"""Small helpers every resolver module uses: the context, role shorthands, id and time
conversions (ids arrive as strings; a malformed one is a ``BAD_USER_INPUT`` naming its field)."""

from __future__ import annotations

import uuid
from datetime import datetime

from strawberry.types import Info

from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.errors import ValidationFailed
from jobline.shared.security.auth import Role

from .context import Context

#: Role shorthands for ``Context.require`` (the role checks are per field).
D, A = Role.DEVELOPER, Role.ADMIN


def parse_id(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationFailed(field, "must be a UUID") from None


def ctx(info: Info[Context, None]) -> Context:
    return info.context


def opt_dt(ms: int | None) -> datetime | None:
    return to_dt(ms) if ms is not None else None


def opt_ms(v: datetime | None) -> int | None:
    return int(v.timestamp() * 1000) if v is not None else None
