"""Reading request bodies: size-capped before parsing, then parsed with orjson.

The cap is enforced while streaming (and up front from ``Content-Length``), so an oversized body
is refused with 413 without ever being held in memory in full or parsed.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from jobline.api.errors import BadRequest
from jobline.shared.platform.config import Settings
from jobline.shared.platform.errors import PayloadTooLarge, ValidationFailed

_MIB = 1024 * 1024
#: Per-item allowance of a bulk body on top of the payloads: the item's other fields.
_BULK_ITEM_OVERHEAD = 1024


def single_body_limit(settings: Settings) -> int:
    """Room for one max-size payload (escaping can double it) plus the envelope; >= 1 MiB."""
    return max(settings.max_payload_bytes * 2, _MIB)


def bulk_body_limit(settings: Settings) -> int:
    """Bulk bodies may be larger, but stay bounded: at most 64 MiB or max_bulk_jobs small items."""
    return max(single_body_limit(settings),
               min(64 * _MIB, settings.max_bulk_jobs * (_BULK_ITEM_OVERHEAD + 4096)))


class UnsupportedMediaType(ValidationFailed):
    code = "unsupported_media_type"
    http_status = 415


def check_json_content_type(content_type: str | None) -> None:
    """Bodies are JSON only: a declared non-JSON media type is refused (415) before reading.
    A missing Content-Type is read as JSON (and must then parse as JSON)."""
    if content_type is None:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/")
                                            and media.endswith("+json")):
        raise UnsupportedMediaType(
            "body", f"request body must be application/json, not {media or 'empty'!r}")


async def read_body(request: Request, limit: int) -> bytes:
    check_json_content_type(request.headers.get("content-type"))
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge("body", f"request body exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge("body", f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise BadRequest("request body must be a JSON document")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"malformed JSON: {e}") from None
