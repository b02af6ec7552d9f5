-- 0004: per-queue rate limits and cron schedules.
--
-- Rate limit: at most rate_limit claims from the queue in any window of rate_window_ms, across
-- all workers. Postgres holds the setting (bumping controls_version like the other controls);
-- the queue's Redis meta hash mirrors it and claim.lua enforces it with a sliding-window log.
--
-- Schedules: one row per cron schedule. next_run_at is the earliest fire time not yet handled;
-- cron_tick locks due rows (FOR UPDATE SKIP LOCKED), submits their runs and advances it in one
-- transaction. schedule_runs records every handled fire time once: its primary key is the unique
-- (schedule, fire time) key, and each submitted run's job also carries the idempotency key
-- 'jobline:cron:<schedule id>:<fire ms>', so a fire time can never yield two jobs.

ALTER TABLE queues
    ADD COLUMN rate_limit     integer,
    ADD COLUMN rate_window_ms integer,
    ADD CONSTRAINT queues_rate_limit_check CHECK (
        (rate_limit IS NULL) = (rate_window_ms IS NULL)
        AND (rate_limit IS NULL OR (rate_limit >= 1 AND rate_window_ms >= 1)));

CREATE TABLE schedules (
    id             uuid        NOT NULL,
    name           text        NOT NULL,
    queue_name     text        NOT NULL,
    job_type       text        NOT NULL,
    payload        jsonb       NOT NULL,
    schedule       text        NOT NULL,
    timezone       text        NOT NULL,
    enabled        boolean     NOT NULL DEFAULT true,
    overlap_policy text        NOT NULL DEFAULT 'allow',
    catch_up       text        NOT NULL DEFAULT 'run_once',
    priority       smallint    NOT NULL DEFAULT 5,
    max_attempts   integer,
    timeout_ms     integer,
    -- earliest fire time not handled yet (NULL: the expression never fires again)
    next_run_at    timestamptz,
    last_run_at    timestamptz,
    last_job_id    uuid,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    CONSTRAINT schedules_pkey PRIMARY KEY (id),
    CONSTRAINT schedules_overlap_check CHECK (overlap_policy IN ('skip', 'allow')),
    CONSTRAINT schedules_catch_up_check CHECK (catch_up IN ('skip', 'run_once')),
    CONSTRAINT schedules_priority_check CHECK (priority BETWEEN 0 AND 10)
);

-- the tick's scan: only enabled schedules with a next fire time
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE enabled AND next_run_at IS NOT NULL;

CREATE TABLE schedule_runs (
    schedule_id uuid        NOT NULL,
    fire_at     timestamptz NOT NULL,
    -- the submitted job; NULL when the run was skipped
    job_id      uuid,
    outcome     text        NOT NULL,
    created_at  timestamptz NOT NULL,
    CONSTRAINT schedule_runs_pkey PRIMARY KEY (schedule_id, fire_at),
    CONSTRAINT schedule_runs_outcome_check CHECK (outcome IN ('submitted', 'caught_up',
        'skipped_overlap'))
);
