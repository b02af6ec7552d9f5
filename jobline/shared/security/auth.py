"""API keys and roles.

Two roles, from the seed: ``developer`` (submit, read, cancel and retry jobs; manage schedules,
batches and retry policies) and ``admin`` (everything, including DLQ bulk actions, queue controls,
worker management, analytics and key management). Every shell (REST, GraphQL, metrics) asks the
same two questions here: who is this (:func:`authenticate`) and may they do it
(:func:`authorize`).

Invariants: a key is shown once, at creation; only its SHA-256 is stored. A revoked key stops
working within :data:`CACHE_TTL_S` in every process (the per-process cache of lookups).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from jobline.shared.core.jobs import translate_errors
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import JoblineError, NotFound, ValidationFailed

#: How long a successful lookup is trusted without asking Postgres again.
CACHE_TTL_S = 5.0
KEY_PREFIX = "jl_"


class Role(StrEnum):
    DEVELOPER = "developer"
    ADMIN = "admin"


_RANK = {Role.DEVELOPER: 1, Role.ADMIN: 2}


class Unauthenticated(JoblineError):
    """No key, or an unknown or revoked one (HTTP 401)."""

    code = "unauthenticated"
    http_status = 401


class Forbidden(JoblineError):
    """A valid key whose role may not do this (HTTP 403)."""

    code = "forbidden"
    http_status = 403


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: uuid.UUID
    name: str
    role: Role

    def may(self, needed: Role) -> bool:
        return _RANK[self.role] >= _RANK[needed]


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: uuid.UUID
    name: str
    role: Role
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# key hash -> (principal, cached at monotonic seconds)
_cache: dict[str, tuple[Principal, float]] = {}


async def create_key(deps: Deps, role: Role | str, name: str = "") -> tuple[KeyInfo, str]:
    """Create a key; returns its record and the key itself (never retrievable again)."""
    try:
        r = Role(role)
    except ValueError:
        raise ValidationFailed("role", "must be 'developer' or 'admin'") from None
    if len(name) > 200:
        raise ValidationFailed("name", "at most 200 characters")
    secret = secrets.token_urlsafe(32)
    key = f"{KEY_PREFIX}{secret}"
    prefix = key[:11]
    key_id = uuid.uuid4()
    now = to_dt(deps.clock.now_ms())
    await deps.pool.execute(
        "INSERT INTO api_keys (id, name, role, prefix, key_hash, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)", key_id, name or f"{r.value} key", r.value, prefix,
        hash_key(key), now)
    return KeyInfo(key_id, name or f"{r.value} key", r, prefix, now, None, None), key


async def list_keys(deps: Deps) -> list[KeyInfo]:
    rows = await deps.pool.fetch(
        "SELECT id, name, role, prefix, created_at, revoked_at, last_used_at FROM api_keys "
        "ORDER BY created_at")
    return [KeyInfo(r["id"], r["name"], Role(r["role"]), r["prefix"], r["created_at"],
                    r["revoked_at"], r["last_used_at"]) for r in rows]


async def revoke_key(deps: Deps, id_or_prefix: str) -> KeyInfo:
    """Revoke by id or by the prefix shown in listings."""
    try:
        key_id: uuid.UUID | None = uuid.UUID(id_or_prefix)
    except ValueError:
        key_id = None
    row = await deps.pool.fetchrow(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $3) "
        "WHERE id = $1 OR prefix = $2 "
        "RETURNING id, name, role, prefix, created_at, revoked_at, last_used_at",
        key_id, id_or_prefix, to_dt(deps.clock.now_ms()))
    if row is None:
        raise NotFound(f"no key {id_or_prefix!r}")
    _cache.clear()
    return KeyInfo(row["id"], row["name"], Role(row["role"]), row["prefix"], row["created_at"],
                   row["revoked_at"], row["last_used_at"])


@translate_errors
async def authenticate(deps: Deps, presented: str | None) -> Principal:
    """The principal behind a presented key; :class:`Unauthenticated` otherwise."""
    if not presented:
        raise Unauthenticated("an API key is required (X-Api-Key header or Bearer token)")
    h = hash_key(presented)
    hit = _cache.get(h)
    now = time.monotonic()
    if hit is not None and now - hit[1] < CACHE_TTL_S:
        return hit[0]
    row = await deps.pool.fetchrow(
        "UPDATE api_keys SET last_used_at = $2 WHERE key_hash = $1 AND revoked_at IS NULL "
        "RETURNING id, name, role", h, to_dt(deps.clock.now_ms()))
    if row is None:
        _cache.pop(h, None)
        raise Unauthenticated("invalid or revoked API key")
    p = Principal(row["id"], row["name"], Role(row["role"]))
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[h] = (p, now)
    return p


def authorize(principal: Principal, needed: Role, action: str = "this") -> None:
    if not principal.may(needed):
        raise Forbidden(f"role {principal.role.value!r} may not {action}; needs {needed.value!r}")


def key_from_headers(headers: Any) -> str | None:
    """``X-Api-Key: <key>`` or ``Authorization: Bearer <key>``."""
    key = headers.get("x-api-key")
    if key:
        return str(key)
    auth = headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        return str(auth[7:].strip()) or None
    return None
