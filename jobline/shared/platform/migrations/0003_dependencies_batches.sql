-- 0003: job dependencies (dependsOn) and batches (job-batches with an onComplete job).
--
-- Dependencies: one row per edge in job_dependencies, and on the dependent a counter of the
-- dependencies that have not completed yet. A completion decrements the counters of its waiting
-- dependents in the same transaction; the decrement that reaches 0 releases the job. A counter,
-- not a recount: two dependencies completing concurrently each decrement under the dependent's
-- row lock, so exactly one of them sees 0 (a recount in each transaction would see the other's
-- completion uncommitted and neither would release). See docs/dependencies.md.

ALTER TABLE jobs
    ADD COLUMN deps_remaining integer NOT NULL DEFAULT 0,
    -- set (under the row lock) by the first submit that names this job in dependsOn; a
    -- completion of a job without it and without a batch needs no follow-up work
    ADD COLUMN has_dependents boolean NOT NULL DEFAULT false;

-- Outside the partitioned jobs table: no cross-partition foreign keys exist, and the lookup that
-- matters ("who waits on X?") is by depends_on, not by the partition key.
CREATE TABLE job_dependencies (
    job_id     uuid NOT NULL,  -- the dependent
    depends_on uuid NOT NULL,  -- the job it waits for
    CONSTRAINT job_dependencies_pkey PRIMARY KEY (job_id, depends_on)
);
CREATE INDEX job_dependencies_depends_on ON job_dependencies (depends_on);

-- Batches. finished_events counts transitions of the batch's jobs into a terminal state; it only
-- grows (a DLQ retry does not decrement it). Reaching total is the cue to check exactly, once per
-- later event, whether every job is terminal; see docs/batches.md for why that is exactly-once.
CREATE TABLE job_batches (
    id                 uuid        NOT NULL,
    name               text        NOT NULL,
    total              integer     NOT NULL,
    finished_events    bigint      NOT NULL DEFAULT 0,
    -- held in 'waiting' until every job of the batch is terminal
    on_complete_job_id uuid,
    created_at         timestamptz NOT NULL,
    completed_at       timestamptz,
    CONSTRAINT job_batches_pkey PRIMARY KEY (id),
    CONSTRAINT job_batches_total_check CHECK (total >= 1)
);

-- Batch counts by status, and the "any job of the batch still unfinished?" probe.
CREATE INDEX jobs_batch_status ON jobs (batch_id, status) WHERE batch_id IS NOT NULL;
