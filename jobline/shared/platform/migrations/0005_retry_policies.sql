-- 0005: retry policies per job type, per-submission non-retryable error types, and cooperative
-- cancellation of running jobs.
--
-- retry_policies holds one row per job type. Every setting is nullable: NULL means "not set at
-- this level", so resolution falls through to the handler decorator and then to the global
-- settings (docs/retry-policy.md). max_attempts and the backoff fields are resolved into the job
-- row at submit time; non_retryable is read by the fail statement itself, so a policy change
-- applies to attempts that fail after it, on whichever worker they ran.

CREATE TABLE retry_policies (
    job_type      text             NOT NULL,
    max_attempts  integer,
    base_ms       bigint,
    factor        double precision,
    cap_ms        bigint,
    jitter        boolean,
    non_retryable text[],
    created_at    timestamptz      NOT NULL,
    updated_at    timestamptz      NOT NULL,
    CONSTRAINT retry_policies_pkey PRIMARY KEY (job_type),
    CONSTRAINT retry_policies_max_attempts_check CHECK (max_attempts BETWEEN 1 AND 100),
    CONSTRAINT retry_policies_backoff_check CHECK (base_ms >= 0 AND cap_ms >= 0 AND factor >= 1)
);

ALTER TABLE jobs
    -- per-submission non-retryable error types; NULL = defer to the policy levels below it
    ADD COLUMN non_retryable       text[],
    -- set by cancel on a running job; the worker holding the lease is signalled and the
    -- attempt's end is recorded as cancelled (see docs/state-machine.md)
    ADD COLUMN cancel_requested_at timestamptz;
