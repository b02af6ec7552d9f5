-- 0016: the job-type registry.
--
-- One row per job type a worker has a handler for (published when the worker starts) or that a
-- worker was handed without having one (``unhandled_at``). The columns are the handler's
-- ``@job`` settings; every one is nullable, NULL meaning "not set by the handler". A submission
-- that omits a field gets the registered value, resolved in the INSERT itself (and the COPY
-- path's resolve query) with this precedence, highest first:
--   queue:        submission > registry > submitter's own handler > 'default'
--   timeout_ms:   submission > registry > submitter's own handler > none
--   max_attempts: submission > stored retry policy > registry > handler > global default
--   backoff:      submission's keys > stored policy's keys > registry's keys > global
--   non_retryable (read when an attempt fails): job > stored policy > running worker's handler
--                 > registry > global
-- Which workers serve a type is live state, not stored here: each worker lists its types in its
-- heartbeat record (Redis, expiring), so a type with no live worker shows up as unserved.

CREATE TABLE job_types (
    job_type      text        NOT NULL,
    queue_name    text,
    max_attempts  integer,
    timeout_ms    integer,
    backoff       jsonb,
    non_retryable text[],
    -- last time a worker published a handler for this type (NULL: never registered)
    registered_at timestamptz,
    -- last time a worker was handed a job of this type and had no handler for it
    unhandled_at  timestamptz,
    updated_at    timestamptz NOT NULL,
    CONSTRAINT job_types_pkey PRIMARY KEY (job_type),
    CONSTRAINT job_types_max_attempts_check CHECK (max_attempts BETWEEN 1 AND 100),
    CONSTRAINT job_types_timeout_ms_check CHECK (timeout_ms > 0)
);
