"""Configuration from AWS Systems Manager Parameter Store.

With ``JOBLINE_SSM_PREFIX=/jobline/prod`` every parameter under the prefix becomes an environment
variable before :func:`jobline.shared.platform.config.load` reads it: ``/jobline/prod/DATABASE_URL`` ->
``DATABASE_URL``, ``/jobline/prod/redis-url`` -> ``REDIS_URL`` (last path segment, upper-cased,
``-`` -> ``_``). SecureString values are decrypted. A variable already set in the environment wins,
so an operator can override one value without touching SSM.

This runs once at process start (CLI commands, the first Lambda invocation), before any
connection is opened: it is configuration, not state.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any

from jobline.shared.platform.errors import ConfigError


def env_name(parameter_name: str) -> str:
    return parameter_name.rstrip("/").rsplit("/", 1)[-1].upper().replace("-", "_").replace(".", "_")


def fetch_parameters(prefix: str, client: Any = None) -> dict[str, str]:
    """Every parameter under ``prefix`` (recursively) as ``{ENV_NAME: value}``."""
    if client is None:
        import boto3  # imported here: a process without SSM never pays for boto3

        client = boto3.client("ssm")
    out: dict[str, str] = {}
    try:
        pages = client.get_paginator("get_parameters_by_path").paginate(
            Path=prefix.rstrip("/") or "/", Recursive=True, WithDecryption=True)
        for page in pages:
            for p in page["Parameters"]:
                out[env_name(p["Name"])] = str(p["Value"])
    except Exception as e:  # botocore raises many unrelated types; all mean "cannot configure"
        raise ConfigError(f"cannot read SSM parameters under {prefix!r}: {e}") from None
    return out


def apply_parameters(prefix: str, environ: MutableMapping[str, str] | None = None,
                     client: Any = None) -> dict[str, str]:
    """Load the parameters into ``environ`` (default ``os.environ``) where not already set.
    Returns the variables that were set."""
    env = os.environ if environ is None else environ
    applied = {k: v for k, v in fetch_parameters(prefix, client).items() if not env.get(k)}
    env.update(applied)
    return applied
