-- 0006: job events. A transactional outbox filled by triggers on jobs, the audit log, the
-- per-minute analytics rollups and the consumers' idempotency receipts.
--
-- Why triggers: an event must exist for every committed transition even if the process dies
-- right after the commit. Writing the outbox row inside the transition's own statement makes
-- the two atomic. A statement-level AFTER trigger with transition tables on the partitioned
-- jobs table sees every row a statement changed (across partitions) and writes all their events
-- with one INSERT ... SELECT, so a 10,000-job batch costs one extra statement, not 10,000, and
-- no core SQL statement has to know about events.

-- Event ids: UUIDv7 (RFC 9562) in the layout of jobline/shared/platform/ids.py. The first 8
-- bytes are the Unix time in milliseconds (48 bits), the version 7 (0x7000 = 28672) and 12 bits
-- of random(); the last 8 stay those of gen_random_uuid() (PostgreSQL 13+): the variant and 62
-- bits from the strong random source, which make the id unique. Not PostgreSQL 18's built-in
-- uuidv7(): Jobline supports PostgreSQL 14-18. One SQL expression, so the planner inlines it.
-- Migration 0010 restates this definition for databases that applied the first text of this
-- file, which used uuidv7() (see SUPERSEDED in migrate.py).
CREATE FUNCTION jobline_uuid7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(overlay(uuid_send(gen_random_uuid()) PLACING
               int8send((floor(date_part('epoch', clock_timestamp()) * 1000)::bigint << 16)
                        | 28672 | floor(random() * 4096)::bigint)
               FROM 1 FOR 8), 'hex')::uuid
$$;

CREATE TABLE job_events (
    -- relay order; assigned at insert, so concurrent transactions may commit out of order: the
    -- relay therefore reads "every unpublished row", never "rows after a cursor"
    seq          bigint      GENERATED ALWAYS AS IDENTITY,
    event_id     uuid        NOT NULL DEFAULT jobline_uuid7(),
    type         text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    job_id       uuid,
    queue_name   text,
    job_type     text,
    attempt      integer,
    duration_ms  integer,
    wait_ms      integer,
    error_type   text,
    error        text,
    data         jsonb,
    published_at timestamptz,
    CONSTRAINT job_events_pkey PRIMARY KEY (seq)
);
-- the relay's scan: only unpublished rows are in it, so it stays tiny
CREATE INDEX job_events_unpublished ON job_events (seq) WHERE published_at IS NULL;
-- retention pruning of published rows
CREATE INDEX job_events_published ON job_events (published_at) WHERE published_at IS NOT NULL;

-- Secrets must not leave the database inside an error message: key=value / "key": "value" pairs
-- whose key looks like a credential keep the key and lose the value.
CREATE FUNCTION jobline_mask_secrets(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(regexp_replace(t,
        '((password|passwd|token|secret|authorization|api[_-]?key)["'']?\s*[:=]\s*["'']?)(Bearer\s+)?[^\s,;&"''}]+',
        '\1***', 'gi'), 1000)
$$;

CREATE FUNCTION jobline_jobs_inserted_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_events (type, occurred_at, job_id, queue_name, job_type, data)
    SELECT 'jobs.submitted', n.created_at, n.id, n.queue_name, n.job_type,
           jsonb_build_object('status', n.status, 'priority', n.priority,
                              'scheduledFor', n.scheduled_for, 'batchId', n.batch_id)
      FROM n ORDER BY n.seq;
    IF FOUND THEN
        PERFORM pg_notify('jobline_events', '');
    END IF;
    RETURN NULL;
END
$$;

-- One event per changed status (two for a failed attempt: jobs.failed for the attempt, then
-- jobs.retries or jobs.dead_letter for what happens to the job). Writes that keep the status
-- (heartbeats, lease extensions) produce nothing.
CREATE FUNCTION jobline_jobs_updated_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_events (type, occurred_at, job_id, queue_name, job_type, attempt, duration_ms,
                            wait_ms, error_type, error, data)
    SELECT e.type, n.updated_at, n.id, n.queue_name, n.job_type, e.attempt, e.duration_ms,
           e.wait_ms, e.error_type, jobline_mask_secrets(e.error), e.data
      FROM o JOIN n ON n.id = o.id
     CROSS JOIN LATERAL (
        SELECT * FROM (VALUES
            -- claimed: the wait is from when the job became due (submission for an immediate
            -- job, the retry time for a retry) to its start
            (n.status = 'processing', 'jobs.started', n.attempts, NULL::int,
             least(greatest(0, extract(epoch FROM n.started_at - o.scheduled_for) * 1000), 2147483647)::int,
             NULL::text, NULL::text, NULL::jsonb),
            (n.status = 'completed' AND o.status = 'processing', 'jobs.completed', n.attempts,
             least(greatest(0, extract(epoch FROM n.completed_at - n.started_at) * 1000), 2147483647)::int,
             NULL, NULL, NULL, NULL),
            -- a failed attempt that counted (a released or snoozed one gives the attempt back)
            (o.status = 'processing' AND n.status IN ('pending', 'scheduled', 'dead_letter')
             AND n.attempts = o.attempts, 'jobs.failed', o.attempts,
             least(greatest(0, extract(epoch FROM n.updated_at - n.started_at) * 1000), 2147483647)::int,
             NULL, n.error_type, n.error, NULL),
            (o.status = 'processing' AND n.status IN ('pending', 'scheduled'), 'jobs.retries',
             o.attempts, NULL, NULL, n.error_type, NULL,
             jsonb_build_object('retryAt', n.scheduled_for,
                                'attemptCounted', n.attempts = o.attempts)),
            (o.status IN ('failed', 'dead_letter') AND n.status = 'pending', 'jobs.retries',
             o.attempts, NULL, NULL, o.error_type, NULL,
             jsonb_build_object('retryAt', n.scheduled_for, 'manual', true)),
            (n.status = 'dead_letter', 'jobs.dead_letter', n.attempts, NULL, NULL, n.error_type,
             n.error, NULL),
            (n.status = 'cancelled', 'jobs.cancelled', n.attempts, NULL, NULL, NULL, n.error,
             NULL)
        ) AS v(hit, type, attempt, duration_ms, wait_ms, error_type, error, data)
        WHERE v.hit
     ) AS e
     WHERE o.status IS DISTINCT FROM n.status
     ORDER BY n.seq;
    IF FOUND THEN
        PERFORM pg_notify('jobline_events', '');
    END IF;
    RETURN NULL;
END
$$;

-- Transition tables need one trigger per event (INSERT, UPDATE).
CREATE TRIGGER jobs_inserted_events AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION jobline_jobs_inserted_events();
CREATE TRIGGER jobs_updated_events AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS o NEW TABLE AS n
    FOR EACH STATEMENT EXECUTE FUNCTION jobline_jobs_updated_events();

-- The audit log: every event as published, partitioned by month of its time. The primary key
-- includes the partition key (required on partitioned tables); an event's time never changes, so
-- (occurred_at, event_id) is as unique as event_id and lets a redelivery be ignored.
CREATE TABLE audit_events (
    occurred_at timestamptz NOT NULL,
    event_id    uuid        NOT NULL,
    type        text        NOT NULL,
    job_id      uuid,
    queue_name  text,
    envelope    jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL,
    CONSTRAINT audit_events_pkey PRIMARY KEY (occurred_at, event_id)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX audit_events_job ON audit_events (job_id, occurred_at);
CREATE INDEX audit_events_type ON audit_events (type, occurred_at);
CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT;

CREATE FUNCTION jobline_ensure_audit_partitions(from_ts timestamptz, months integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    m       timestamptz := date_trunc('month', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    next_m  timestamptz;
    created integer := 0;
    name    text;
BEGIN
    FOR i IN 1..months LOOP
        next_m := ((m AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
        name := 'audit_events_p' || to_char(m AT TIME ZONE 'UTC', 'YYYYMM');
        IF to_regclass(name) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)',
                               name, m, next_m);
                created := created + 1;
            EXCEPTION WHEN check_violation THEN
                RAISE NOTICE 'partition % skipped: rows for it are in the default partition', name;
            END;
        END IF;
        m := next_m;
    END LOOP;
    RETURN created;
END
$$;

-- Which events a consumer has applied. Inserting the batch's ids in the same transaction as its
-- effects is what makes a redelivered event a no-op (at-least-once delivery, exactly-once effect).
CREATE TABLE event_receipts (
    consumer    text        NOT NULL,
    event_id    uuid        NOT NULL,
    received_at timestamptz NOT NULL,
    CONSTRAINT event_receipts_pkey PRIMARY KEY (consumer, event_id)
);
CREATE INDEX event_receipts_age ON event_receipts (received_at);

-- Per-minute rollups per (queue, job type): what dashboards read instead of scanning jobs.
CREATE TABLE job_rollups (
    minute       timestamptz NOT NULL,
    queue_name   text        NOT NULL,
    job_type     text        NOT NULL,
    submitted    bigint      NOT NULL DEFAULT 0,
    started      bigint      NOT NULL DEFAULT 0,
    completed    bigint      NOT NULL DEFAULT 0,
    failed       bigint      NOT NULL DEFAULT 0,
    retries      bigint      NOT NULL DEFAULT 0,
    dead_letter  bigint      NOT NULL DEFAULT 0,
    cancelled    bigint      NOT NULL DEFAULT 0,
    duration_sum_ms bigint   NOT NULL DEFAULT 0,
    wait_sum_ms  bigint      NOT NULL DEFAULT 0,
    CONSTRAINT job_rollups_pkey PRIMARY KEY (minute, queue_name, job_type)
);

-- Fixed log2 buckets: bucket 0 holds [0, 1) ms, bucket b >= 1 holds [2^(b-1), 2^b) ms.
CREATE TABLE job_rollup_histograms (
    minute     timestamptz NOT NULL,
    queue_name text        NOT NULL,
    job_type   text        NOT NULL,
    metric     text        NOT NULL,
    bucket     smallint    NOT NULL,
    n          bigint      NOT NULL,
    CONSTRAINT job_rollup_histograms_pkey PRIMARY KEY (minute, queue_name, job_type, metric, bucket),
    CONSTRAINT job_rollup_histograms_metric_check CHECK (metric IN ('duration', 'wait'))
);
