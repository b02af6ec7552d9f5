"""Configuration from the environment, read once per process.

Every field has a default that works for a local ``make run``; production sets ``DATABASE_URL`` and
``REDIS_URL`` to real servers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from jobline.shared.security.masking import DEFAULT_MASK_KEYS


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _json(name: str) -> dict[str, object]:
    raw = os.environ.get(name)
    value = json.loads(raw) if raw else {}
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object")
    return value


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _list(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return tuple(x.strip() for x in raw.split(",") if x.strip())


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path(os.environ.get("JOBLINE_HOME", ".jobline")).resolve())
    database_url: str | None = field(default_factory=lambda: os.environ.get("DATABASE_URL") or None)
    redis_url: str | None = field(default_factory=lambda: os.environ.get("REDIS_URL") or None)
    #: A streaming replica of ``database_url`` for staleness-tolerant reads (dashboard,
    #: analytics, listings; docs/deploy.md, "Read replica"). None: every read uses the primary.
    database_read_url: str | None = field(
        default_factory=lambda: os.environ.get("DATABASE_READ_URL") or None)
    #: The most a replica read may lag the primary, ms; past it (or with the replica down)
    #: those reads go to the primary.
    read_max_lag_ms: int = field(default_factory=lambda: _int("JOBLINE_READ_MAX_LAG_MS", 5_000))
    #: Prepended to every Redis key; lets tests and tenants share one server.
    redis_prefix: str = field(default_factory=lambda: os.environ.get("JOBLINE_REDIS_PREFIX", "jl"))
    #: ``auto``: ask the server once (INFO cluster) whether ``redis_url`` is a cluster node;
    #: ``on``/``off`` skip the question (docs/deploy.md, "Redis Cluster").
    redis_cluster: str = field(
        default_factory=lambda: os.environ.get("JOBLINE_REDIS_CLUSTER", "auto"))
    #: Slot groups the queues are spread over (docs/redis-keys.md, "Redis Cluster"); None: 12 on
    #: a cluster, the single-node layout otherwise. Every process must agree.
    redis_slot_groups: int | None = field(
        default_factory=lambda: (int(os.environ["JOBLINE_REDIS_SLOT_GROUPS"])
                                 if os.environ.get("JOBLINE_REDIS_SLOT_GROUPS") else None))
    api_host: str = field(default_factory=lambda: os.environ.get("JOBLINE_HOST", "127.0.0.1"))
    api_port: int = field(default_factory=lambda: _int("JOBLINE_PORT", 8000))
    #: How long a claim is valid without a heartbeat.
    lease_ms: int = field(default_factory=lambda: _int("JOBLINE_LEASE_MS", 30_000))
    #: How often the scheduler reaps expired leases.
    sweep_ms: int = field(default_factory=lambda: _int("JOBLINE_SWEEP_MS", 2_000))
    max_payload_bytes: int = field(default_factory=lambda: _int("JOBLINE_MAX_PAYLOAD_BYTES", 262_144))
    max_bulk_jobs: int = field(default_factory=lambda: _int("JOBLINE_MAX_BULK", 10_000))
    max_page_size: int = field(default_factory=lambda: _int("JOBLINE_MAX_PAGE_SIZE", 500))
    default_max_attempts: int = field(default_factory=lambda: _int("JOBLINE_MAX_ATTEMPTS", 3))
    backoff_base_ms: int = field(default_factory=lambda: _int("JOBLINE_BACKOFF_BASE_MS", 1_000))
    backoff_factor: float = field(default_factory=lambda: _float("JOBLINE_BACKOFF_FACTOR", 2.0))
    backoff_cap_ms: int = field(default_factory=lambda: _int("JOBLINE_BACKOFF_CAP_MS", 3_600_000))
    #: Error types never retried unless a job, its type's policy or its handler says otherwise.
    non_retryable: tuple[str, ...] = field(default_factory=lambda: _list(
        "JOBLINE_NON_RETRYABLE", ("validation_error",)))
    #: JOBLINE_ADAPTIVE_RETRIES=off: the global switch of the retry advisor. Off, jobs whose
    #: policy says ``adaptive`` retry on their fixed backoff and no decision is recorded (the
    #: advisor can also be switched off at run time: ``PUT /api/v1/ai/adaptive-retries``).
    adaptive_retries: bool = field(default_factory=lambda: os.environ.get(
        "JOBLINE_ADAPTIVE_RETRIES", "on").strip().lower() not in ("off", "0", "false", "no"))
    #: Seconds a SIGTERMed worker waits for in-flight jobs before releasing them.
    shutdown_grace_s: float = field(default_factory=lambda: _float("JOBLINE_SHUTDOWN_GRACE_S", 25.0))
    #: Upper bound, ms, on each store call of a worker's shutdown once its handlers are done
    #: (release, deregister, the workers.stopped event, closing connections) and on stopping a
    #: background loop: a store that does not answer in this time is abandoned. The worker's
    #: stop bound is nine of these plus its flush budget and 6 s (jobline.worker.runtime).
    teardown_step_ms: int = field(
        default_factory=lambda: _int("JOBLINE_TEARDOWN_STEP_MS", 5_000))
    #: How often the scheduler records worker-group history and runs the autoscaler.
    fleet_step_ms: int = field(default_factory=lambda: _int("JOBLINE_FLEET_STEP_MS", 2000))
    pg_pool_size: int = field(default_factory=lambda: _int("JOBLINE_PG_POOL", 10))
    #: Per-queue rate limits applied when a scheduler starts, as JSON:
    #: ``{"email": {"limit": 10, "windowMs": 1000}}`` (``jobline.shared.dispatch.rate_limits``).
    rate_limits: dict[str, object] = field(default_factory=lambda: _json("JOBLINE_RATE_LIMITS"))
    #: S3 bucket for payloads/results above ``offload_bytes`` (None: offload off).
    s3_bucket: str | None = field(default_factory=lambda: os.environ.get("JOBLINE_S3_BUCKET") or None)
    offload_bytes: int = field(default_factory=lambda: _int("JOBLINE_OFFLOAD_BYTES", 262_144))
    #: S3 endpoint override (LocalStack, moto, MinIO); None: AWS.
    s3_endpoint_url: str | None = field(
        default_factory=lambda: os.environ.get("JOBLINE_S3_ENDPOINT") or None)
    #: Where job events go: "redis" (Streams, default) or "kafka" (see docs/events.md).
    #: JOBLINE_EVENTS=off: no job events at all (docs/events.md, "Turning events off"): the
    #: triggers write no outbox rows on this process's connections, emit() writes nothing, and
    #: `jobline run` starts no relay and no consumers.
    events: bool = field(default_factory=lambda: os.environ.get(
        "JOBLINE_EVENTS", "on").strip().lower() not in ("off", "0", "false", "no"))
    #: Days the outbox (the audit log) keeps published events; older days are dropped whole.
    audit_retention_days: int = field(
        default_factory=lambda: _int("JOBLINE_AUDIT_RETENTION_DAYS", 30))
    #: Days the minute grain of the rollups and the minute samples are kept (hour and day
    #: rollups and hour samples: 13 months; docs/analytics.md, "Retention").
    rollup_minute_days: int = field(
        default_factory=lambda: _int("JOBLINE_ROLLUP_MINUTE_DAYS", 7))
    #: Days raw jobs are kept: older monthly partitions are dropped once all their jobs are
    #: final (their rollups stay).
    retention_days: int = field(default_factory=lambda: _int("JOBLINE_RETENTION_DAYS", 30))
    #: The relay's shortest time between two passes, ms. Every claim and completion statement
    #: NOTIFYs the relay; a pass per notification cost more than the rows it moved (a dozen round
    #: trips), so a busy relay gathers what committed meanwhile. Adds up to this much latency.
    relay_interval_ms: int = field(
        default_factory=lambda: _int("JOBLINE_RELAY_INTERVAL_MS", 20))
    event_bus: str = field(default_factory=lambda: os.environ.get("JOBLINE_EVENT_BUS", "redis"))
    kafka_bootstrap: str | None = field(
        default_factory=lambda: os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None)
    #: Keys whose values are masked wherever stored data is shown (``jobline.shared.security.masking``).
    mask_keys: tuple[str, ...] = field(default_factory=lambda: _list(
        "JOBLINE_MASK_KEYS", DEFAULT_MASK_KEYS))
    #: Most jobs one queue may hold pending + scheduled; a submit past it is refused with 503
    #: (backpressure, ``jobline.shared.dispatch.backpressure``). 0 = no cap.
    max_queue_depth: int = field(default_factory=lambda: _int("JOBLINE_MAX_QUEUE_DEPTH", 0))
    #: Per-queue caps overriding ``max_queue_depth``, as JSON: ``{"email": 100000}`` (0 = none).
    queue_depths: dict[str, object] = field(default_factory=lambda: _json("JOBLINE_QUEUE_DEPTHS"))
    #: Requests per API key, "N/Ws" (e.g. "600/60s"); "" = no limit (``jobline.shared.ratelimit``).
    rate_per_key: str = field(default_factory=lambda: os.environ.get("JOBLINE_RATE_PER_KEY", ""))

    #: Seconds a cancelled running job's async handler gets to stop by itself before its task is
    #: cancelled (sync handlers run in threads and cannot be stopped; docs/state-machine.md).
    cancel_grace_s: float = field(default_factory=lambda: _float("JOBLINE_CANCEL_GRACE_S", 5.0))
    #: Seconds a completed job's result is kept when neither the job (``resultTtl``) nor its
    #: handler (``@job(result_ttl=...)``) says; 0 = kept until the job is deleted.
    result_ttl_s: int = field(default_factory=lambda: _int("JOBLINE_RESULT_TTL_S", 0))
    #: How often a worker writes the progress/log lines its handlers reported (coalesced).
    progress_flush_ms: int = field(default_factory=lambda: _int("JOBLINE_PROGRESS_FLUSH_MS", 500))

    #: Alerting (docs/alerts.md): how often the scheduler evaluates each rule; a delivery job's
    #: attempts and back-off; the dashboard's public URL that notifications link to.
    alert_eval_ms: int = field(default_factory=lambda: _int("JOBLINE_ALERT_EVAL_MS", 10_000))
    alert_delivery_attempts: int = field(
        default_factory=lambda: _int("JOBLINE_ALERT_DELIVERY_ATTEMPTS", 6))
    alert_backoff_base_ms: int = field(
        default_factory=lambda: _int("JOBLINE_ALERT_BACKOFF_BASE_MS", 2_000))
    alert_backoff_cap_ms: int = field(
        default_factory=lambda: _int("JOBLINE_ALERT_BACKOFF_CAP_MS", 300_000))
    dashboard_url: str = field(default_factory=lambda: os.environ.get(
        "JOBLINE_DASHBOARD_URL", "http://127.0.0.1:8000").rstrip("/"))

    #: GraphiQL at /graphql (development only: it loads its assets from a CDN)
    dev_mode: bool = field(default_factory=lambda: os.environ.get("JOBLINE_DEV", "") == "1")
    #: How often a queueStats subscription sends a snapshot without a backlog change
    graphql_stats_interval_s: float = field(
        default_factory=lambda: _float("JOBLINE_GRAPHQL_STATS_INTERVAL_S", 5.0))

    #: Optional LLM narration of the AI explanations (docs/ai.md): an OpenAI-compatible base URL
    #: (``{url}/chat/completions``); unset, every explanation is the computed template
    llm_url: str | None = field(
        default_factory=lambda: (os.environ.get("JOBLINE_LLM_URL") or "").rstrip("/") or None)
    llm_model: str = field(
        default_factory=lambda: os.environ.get("JOBLINE_LLM_MODEL") or "gpt-4o-mini")
    llm_api_key: str | None = field(
        default_factory=lambda: os.environ.get("JOBLINE_LLM_API_KEY") or None, repr=False)
    llm_timeout_ms: int = field(default_factory=lambda: _int("JOBLINE_LLM_TIMEOUT_MS", 3000))

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def services_file(home: Path) -> Path:
    """Where ``jobline run`` records the URLs of the services it started."""
    return home / "services.json"


def load() -> Settings:
    """Settings from the environment; database/Redis URLs fall back to the ``services.json`` of a
    running ``jobline run`` in ``JOBLINE_HOME``, so every tool finds the local services."""
    s = Settings()
    f = services_file(s.home)
    if (s.database_url is None or s.redis_url is None) and f.exists():
        data = json.loads(f.read_text())
        s = s.with_(database_url=s.database_url or data.get("database_url"),
                    redis_url=s.redis_url or data.get("redis_url"))
    return s
