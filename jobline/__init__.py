"""Jobline: durable distributed background jobs (PostgreSQL for truth, Redis/Valkey for dispatch)."""

from jobline.shared.platform.errors import Cancelled, JobError, Retry, Unrecoverable
from jobline.worker.registry import JobContext, JobTask, job, set_default_client

__all__ = ["Cancelled", "Client", "JobContext", "JobError", "JobTask", "Retry", "SyncClient",
           "Unrecoverable", "job", "set_default_client"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # The client pulls in asyncpg/redis; keep `import jobline` cheap for handler modules.
    if name == "Client":
        from jobline.client import Client

        return Client
    if name == "SyncClient":
        from jobline.sync_client import SyncClient

        return SyncClient
    raise AttributeError(name)
