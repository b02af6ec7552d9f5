"""One exception tree for Jobline; driver errors are translated into it at the store boundary.

Handler-facing control results (:class:`Retry`, :class:`Unrecoverable`) live here too, so a job
handler only imports ``jobline``.
"""

from __future__ import annotations

from collections.abc import Sequence


class JoblineError(Exception):
    """Root of every error Jobline raises on purpose."""

    code = "internal"
    http_status = 500


class ValidationFailed(JoblineError):
    """Input that cannot be accepted; ``field`` names the offending field (dotted path).

    ``errors`` holds every ``(field, message)`` found (at least this one, first), so a client
    can fix all its mistakes in one round trip."""

    code = "validation_error"
    http_status = 422

    def __init__(self, field: str, message: str,
                 errors: Sequence[tuple[str, str]] | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.errors: list[tuple[str, str]] = list(errors) if errors else [(field, message)]


class UnknownParameter(ValidationFailed):
    """A query parameter the endpoint does not know (a typo would otherwise be ignored)."""

    code = "bad_request"
    http_status = 400


class IdempotencyConflict(JoblineError):
    """An idempotency key reused for a different job (another job type or payload): the key
    would otherwise silently return a job that is not the one asked for."""

    code = "conflict"
    http_status = 409

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PayloadTooLarge(ValidationFailed):
    code = "payload_too_large"
    http_status = 413


class NotFound(JoblineError):
    code = "not_found"
    http_status = 404


class IllegalTransition(JoblineError):
    """The job is in a state from which the requested transition is not allowed."""

    code = "conflict"
    http_status = 409

    def __init__(self, job_id: str, status: str, action: str) -> None:
        super().__init__(f"cannot {action} job {job_id} in status {status!r}")
        self.job_id = job_id
        self.status = status
        self.action = action


class Unavailable(JoblineError):
    """A backing store is unreachable; the caller should retry later (HTTP 503 + Retry-After)."""

    code = "unavailable"
    http_status = 503

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ConfigError(JoblineError):
    code = "config_error"


# --- control results a handler may raise -------------------------------------------------------


class JobControl(Exception):
    """Base for exceptions that steer the job's next transition instead of reporting a bug."""


class Retry(JobControl):
    """Retry the job after ``after`` seconds. With ``burn_attempt=False`` (e.g. rate limited),
    the attempt does not count against ``max_attempts``."""

    def __init__(self, after: float = 0.0, reason: str = "retry requested", *,
                 burn_attempt: bool = True, error_type: str = "retry") -> None:
        super().__init__(reason)
        self.after = after
        self.reason = reason
        self.burn_attempt = burn_attempt
        self.error_type = error_type


class Unrecoverable(JobControl):
    """Fail the job now, without further retries."""

    def __init__(self, reason: str, error_type: str = "unrecoverable") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type


class Cancelled(JobControl):
    """End the job as ``cancelled`` now: raise it after observing ``ctx.cancelled`` (or to give up
    on a job that should not run any more). Never retried, never dead-lettered."""

    def __init__(self, reason: str = "cancelled") -> None:
        super().__init__(reason)
        self.reason = reason


class JobError(Exception):
    """A handler failure with an explicit error type (``timeout``, ``connection_refused``, ...)."""

    def __init__(self, message: str, error_type: str = "error") -> None:
        super().__init__(message)
        self.error_type = error_type
