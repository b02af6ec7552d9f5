-- 0017: progress and log lines reported by a running handler (ctx.progress / ctx.log).
--
-- One row per execution of a job (job_id, lease_token): a retry starts a fresh row, and the
-- row of an earlier execution stays next to its job_attempts row. The worker coalesces a
-- handler's reports and writes them in one statement per flush for all its jobs, so a job that
-- never reports costs nothing and one that reports often costs one write per flush interval.
-- `logs` holds at most the last N lines (trimmed by the upsert, jobline/shared/core/progress.py),
-- each a {"t": epoch ms, "m": text} object, masked and length-capped before it is stored.
-- No foreign key: jobs is range-partitioned and rows here go when the job's result expires
-- (jobline/shared/core/results.py) or with the job (DLQ delete).
CREATE TABLE job_progress (
    job_id      uuid NOT NULL,
    lease_token bigint NOT NULL,
    attempt     integer NOT NULL,
    fraction    double precision,
    message     text,
    logs        jsonb NOT NULL DEFAULT '[]'::jsonb,
    logs_dropped integer NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (job_id, lease_token),
    CHECK (fraction IS NULL OR (fraction >= 0 AND fraction <= 1))
);
