"""Large payloads and results live in S3; Postgres keeps a small pointer to them.

Off unless ``JOBLINE_S3_BUCKET`` is set. Then a payload (at submit) or a result (at complete)
whose JSON exceeds ``JOBLINE_OFFLOAD_BYTES`` (default 256 KiB) is written to S3 and the row holds
``{"$joblineS3": {"bucket", "key", "bytes"}}`` instead. Workers (claim) and the API (get/list)
resolve pointers transparently, so handlers and clients see the original JSON.

Ordering: the object is written *before* the Postgres statement that references it, so a
committed pointer always points at an existing object. A failed commit leaves an orphan object,
which the bucket's lifecycle rule expires (serverless.yml); nothing ever points at it.

Keys are content-independent and unique per write (``payloads/<job id>``,
``results/<job id>/<lease token>``), so a retried write overwrites its own object and never
another job's. boto3 is blocking, so calls run in a thread; it is imported only when a pointer
or an oversized value is actually met.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from jobline.shared.platform.config import Settings
from jobline.shared.platform.errors import Unavailable

POINTER = "$joblineS3"


def enabled(settings: Settings) -> bool:
    return settings.s3_bucket is not None


def is_pointer(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and POINTER in value


@functools.lru_cache(maxsize=8)
def _client(endpoint_url: str | None) -> Any:
    # A client is thread-safe and costly to build (~50 ms); one per endpoint per process.
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url)


async def _put(settings: Settings, key: str, body: bytes) -> None:
    client = _client(settings.s3_endpoint_url)
    try:
        await asyncio.to_thread(client.put_object, Bucket=settings.s3_bucket, Key=key, Body=body,
                                ContentType="application/json")
    except Exception as e:  # botocore's error types; all mean "the store is not available"
        raise Unavailable(f"s3 unavailable: {type(e).__name__}") from e


async def _get(settings: Settings, bucket: str, key: str) -> bytes:
    client = _client(settings.s3_endpoint_url)
    try:
        obj = await asyncio.to_thread(client.get_object, Bucket=bucket, Key=key)
        body: bytes = await asyncio.to_thread(obj["Body"].read)
    except Exception as e:
        raise Unavailable(f"s3 unavailable: {type(e).__name__}") from e
    return body


async def store(settings: Settings, texts: Sequence[str], keys: Sequence[str]) -> list[str]:
    """``texts`` (JSON) with every one above the threshold replaced by a pointer to its S3
    object (written now, concurrently)."""
    if not enabled(settings):
        return list(texts)
    big = [i for i, t in enumerate(texts) if len(t) > settings.offload_bytes]
    if not big:
        return list(texts)
    await asyncio.gather(*(_put(settings, keys[i], texts[i].encode()) for i in big))
    out = list(texts)
    for i in big:
        out[i] = orjson.dumps({POINTER: {"bucket": settings.s3_bucket, "key": keys[i],
                                         "bytes": len(texts[i])}}).decode()
    return out


def payload_key(job_id: uuid.UUID) -> str:
    return f"payloads/{job_id}.json"


def result_key(job_id: uuid.UUID, token: int) -> str:
    return f"results/{job_id}/{token}.json"


async def resolve(settings: Settings, value: Any) -> Any:
    """``value`` itself, or the JSON its pointer refers to."""
    if not is_pointer(value):
        return value
    ref = value[POINTER]
    return orjson.loads(await _get(settings, ref["bucket"], ref["key"]))


async def resolve_many(settings: Settings, values: Sequence[Any]) -> list[Any]:
    if not any(is_pointer(v) for v in values):
        return list(values)
    return list(await asyncio.gather(*(resolve(settings, v) for v in values)))
