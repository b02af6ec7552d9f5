-- 0001: jobs, attempts, idempotency keys, time partitions.
--
-- The jobs table is range-partitioned on its UUIDv7 id: the id's first 48 bits are the creation
-- time in ms, so monthly partitions hold a month of submissions, an id lookup prunes to one
-- partition, and an old month is dropped with DROP TABLE instead of a 100M-row DELETE.
-- Times are timestamptz; core operations pass "now" in from the injectable clock, never now().

CREATE SEQUENCE jobs_seq AS bigint;

CREATE TABLE jobs (
    id               uuid        NOT NULL,
    -- submission order; FIFO within a priority follows it (see docs/redis-keys.md)
    seq              bigint      NOT NULL DEFAULT nextval('jobs_seq'),
    queue_name       text        NOT NULL,
    job_type         text        NOT NULL,
    payload          jsonb       NOT NULL,
    status           text        NOT NULL,
    priority         smallint    NOT NULL DEFAULT 5,
    attempts         integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL DEFAULT 3,
    result           jsonb,
    error            text,
    error_type       text,
    created_at       timestamptz NOT NULL,
    started_at       timestamptz,
    completed_at     timestamptz,
    scheduled_for    timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    timeout_ms       integer,
    idempotency_key  text,
    -- fencing: incremented by every claim; a write carrying an older token is rejected
    lease_token      bigint      NOT NULL DEFAULT 0,
    lease_expires_at timestamptz,
    worker_id        text,
    batch_id         uuid,
    -- per-submission retry policy override: {"baseMs", "factor", "capMs"}
    backoff          jsonb,
    CONSTRAINT jobs_pkey PRIMARY KEY (id),
    CONSTRAINT jobs_status_check CHECK (status IN ('waiting', 'pending', 'scheduled', 'processing',
        'completed', 'failed', 'dead_letter', 'cancelled')),
    CONSTRAINT jobs_priority_check CHECK (priority BETWEEN 0 AND 10),
    CONSTRAINT jobs_attempts_check CHECK (attempts >= 0 AND max_attempts >= 1),
    CONSTRAINT jobs_lease_check CHECK (status <> 'processing' OR lease_expires_at IS NOT NULL)
) PARTITION BY RANGE (id);

-- the seed's index, serving "queue X, status Y, due by T"
CREATE INDEX jobs_queue_status_sched ON jobs (queue_name, status, scheduled_for);
-- listings by status, newest first (id order is creation order)
CREATE INDEX jobs_status_id ON jobs (status, id);
CREATE INDEX jobs_type_id ON jobs (job_type, id);
-- the reaper's scan: only running jobs are in it, so it stays tiny
CREATE INDEX jobs_lease_expiry ON jobs (lease_expires_at) WHERE status = 'processing';

CREATE TABLE jobs_default PARTITION OF jobs DEFAULT;

-- One row per finished attempt (completed, failed, timed out, lease expired, released).
-- The primary key on (job_id, lease_token) is what makes "recorded completed exactly once" hold:
-- an attempt can end only once.
CREATE TABLE job_attempts (
    job_id      uuid        NOT NULL,
    lease_token bigint      NOT NULL,
    attempt     integer     NOT NULL,
    worker_id   text,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    outcome     text        NOT NULL,
    error_type  text,
    error       text,
    duration_ms integer     NOT NULL,
    CONSTRAINT job_attempts_pkey PRIMARY KEY (job_id, lease_token),
    CONSTRAINT job_attempts_outcome_check CHECK (outcome IN ('completed', 'failed', 'retry',
        'timeout', 'lease_expired', 'released', 'cancelled'))
) PARTITION BY RANGE (job_id);

CREATE TABLE job_attempts_default PARTITION OF job_attempts DEFAULT;

-- Idempotency keys live outside the partitioned table because a unique index on a partitioned
-- table must contain the partition key, and a key must be unique across all months.
CREATE TABLE idempotency_keys (
    key        text        NOT NULL,
    job_id     uuid        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (key)
);

CREATE TABLE queues (
    name       text        NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT queues_pkey PRIMARY KEY (name)
);

-- The lower bound of the UUIDv7 range for a millisecond timestamp.
CREATE FUNCTION jobline_uuid7_floor(ms bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (substr(lpad(to_hex(ms), 12, '0'), 1, 8) || '-' || substr(lpad(to_hex(ms), 12, '0'), 9, 4)
            || '-0000-0000-000000000000')::uuid
$$;

-- Creates the monthly partitions of jobs and job_attempts covering [from, from + months).
-- Idempotent; a month whose rows already sit in the default partition is skipped (logged),
-- because attaching it would need those rows moved first.
CREATE FUNCTION jobline_ensure_partitions(from_ts timestamptz, months integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m        timestamptz := date_trunc('month', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    next_m   timestamptz;
    lo       uuid;
    hi       uuid;
    created  integer := 0;
    parent   text;
    name     text;
BEGIN
    FOR i IN 1..months LOOP
        next_m := ((m AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
        lo := jobline_uuid7_floor((extract(epoch FROM m) * 1000)::bigint);
        hi := jobline_uuid7_floor((extract(epoch FROM next_m) * 1000)::bigint);
        FOREACH parent IN ARRAY ARRAY['jobs', 'job_attempts'] LOOP
            name := parent || '_p' || to_char(m AT TIME ZONE 'UTC', 'YYYYMM');
            IF to_regclass(name) IS NULL THEN
                BEGIN
                    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                                   name, parent, lo, hi);
                    created := created + 1;
                EXCEPTION WHEN check_violation THEN
                    RAISE NOTICE 'partition % skipped: rows for it are in the default partition', name;
                END;
            END IF;
        END LOOP;
        m := next_m;
    END LOOP;
    RETURN created;
END
$$;
