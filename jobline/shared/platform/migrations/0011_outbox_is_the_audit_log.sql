-- 0011: the outbox is the audit log; the relay keeps a cursor; consumers keep watermarks.
--
-- Measured (docs/performance.md, "Events"): with the relay and the three consumers running, the
-- processing benchmark dropped from ~7,200 to ~2,200 jobs/s. PostgreSQL wrote every event three
-- more times after the trigger's outbox row: the relay's UPDATE published_at (a non-HOT update:
-- published_at is indexed), the audit consumer's copy into audit_events (jsonb envelope, three
-- indexes), and one event_receipts row per event per consumer; then vacuumed all of it.
--
-- Now:
-- * job_events is range-partitioned by day of occurred_at and kept for the audit retention
--   (jobline_drop_event_partitions drops whole days). The audit API reads it; audit_events
--   is gone (its rows are moved here) and so is the audit consumer.
-- * No published_at. The relay keeps one cursor, event_relay_state.published_through: every
--   committed row with seq <= it is on the bus. Identity values are taken before commit, so
--   a transaction can commit a lower seq after a higher one; the relay therefore advances the
--   cursor only to a "settled" bound: the sequence value L it read before a snapshot whose
--   xmax was X, once every transaction below X has ended (pg_snapshot_xmin >= X). Every writer
--   of job_events has a transaction id before it takes a seq (the triggers run after the jobs
--   write; emit() asks for pg_current_xact_id() first), so no seq <= L can still appear.
-- * Consumers: consumer_watermarks (consumer, part) -> the highest seq applied, committed with
--   the effect. Redelivered or re-published events (seq <= watermark) are skipped; no row per
--   event. event_receipts is gone.
-- * The job triggers write nothing when the session sets jobline.events = 'off'
--   (JOBLINE_EVENTS=off sets it on every pooled connection).

-- The rows wait in a temporary table while the outbox is recreated (so the new table's
-- constraints get the names a fresh install gives them).
CREATE TEMPORARY TABLE job_events_0010 ON COMMIT DROP AS SELECT * FROM job_events;
DROP TABLE job_events;

CREATE SEQUENCE job_events_seq;

CREATE TABLE job_events (
    -- relay order; taken at insert, so transactions may commit out of seq order (see above)
    seq           bigint      NOT NULL DEFAULT nextval('job_events_seq'),
    event_id      uuid        NOT NULL DEFAULT jobline_uuid7(),
    type          text        NOT NULL,
    occurred_at   timestamptz NOT NULL,
    job_id        uuid,
    queue_name    text,
    job_type      text,
    attempt       integer,
    duration_ms   integer,
    wait_ms       integer,
    error_type    text,
    error         text,
    data          jsonb,
    status        text,
    priority      smallint,
    scheduled_for timestamptz,
    batch_id      uuid,
    -- the partition key must be in the primary key; seq alone is unique
    CONSTRAINT job_events_pkey PRIMARY KEY (seq, occurred_at)
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE job_events_seq OWNED BY job_events.seq;
-- the audit query: newest first, keyset-paged on (occurred_at, event_id); and one job's events
CREATE INDEX job_events_time ON job_events (occurred_at, event_id);
CREATE INDEX job_events_job ON job_events (job_id, occurred_at);
-- days without their own partition (clock far off, partitions not made yet) land here
CREATE TABLE job_events_default PARTITION OF job_events DEFAULT;

-- Daily partitions job_events_pYYYYMMDD for `days` days from the day of from_ts (idempotent).
CREATE FUNCTION jobline_ensure_event_partitions(from_ts timestamptz, days integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    d       timestamptz := date_trunc('day', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    next_d  timestamptz;
    created integer := 0;
    name    text;
BEGIN
    FOR i IN 1..days LOOP
        next_d := d + interval '1 day';
        name := 'job_events_p' || to_char(d AT TIME ZONE 'UTC', 'YYYYMMDD');
        IF to_regclass(name) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF job_events FOR VALUES FROM (%L) TO (%L)',
                               name, d, next_d);
                created := created + 1;
            EXCEPTION WHEN check_violation THEN
                RAISE NOTICE 'partition % skipped: rows for it are in the default partition', name;
            END;
        END IF;
        d := next_d;
    END LOOP;
    RETURN created;
END
$$;

-- Retention: drop the days that ended before `before` whose rows are all published (seq <=
-- published_through), and delete such rows from the default partition. Returns partitions
-- dropped. A relay that is far behind keeps its unpublished days.
CREATE FUNCTION jobline_drop_event_partitions(before timestamptz, published_through bigint)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    p       record;
    pending boolean;
    dropped integer := 0;
BEGIN
    PERFORM set_config('lock_timeout', '1s', true);
    FOR p IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'job_events'::regclass AND c.relname ~ '^job_events_p[0-9]{8}$'
    LOOP
        IF (to_date(substr(p.relname, 13), 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC')
               + interval '1 day' <= before THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE seq > $1)', p.relname)
               INTO pending USING published_through;
            IF NOT pending THEN
                -- Dropping a partition locks the parent; waiting behind a long reader would
                -- queue every outbox insert behind it, so give up quickly and retry next time.
                BEGIN
                    EXECUTE format('DROP TABLE %I', p.relname);
                    dropped := dropped + 1;
                EXCEPTION WHEN lock_not_available THEN
                    RAISE NOTICE 'partition % busy; dropped next time', p.relname;
                END;
            END IF;
        END IF;
    END LOOP;
    DELETE FROM job_events_default WHERE occurred_at < before AND seq <= published_through;
    RETURN dropped;
END
$$;

-- Today's partitions before the rows move in: rows of a day without one land in the default
-- partition, and that day's partition can then not be created any more.
SELECT jobline_ensure_event_partitions(now() - interval '1 day', 5);

INSERT INTO job_events (seq, event_id, type, occurred_at, job_id, queue_name, job_type, attempt,
                        duration_ms, wait_ms, error_type, error, data, status, priority,
                        scheduled_for, batch_id)
SELECT seq, event_id, type, occurred_at, job_id, queue_name, job_type, attempt, duration_ms,
       wait_ms, error_type, error, data, status, priority, scheduled_for, batch_id
  FROM job_events_0010;
-- Audit rows whose outbox row was already pruned: the envelope has every column.
INSERT INTO job_events (seq, event_id, type, occurred_at, job_id, queue_name, job_type, attempt,
                        duration_ms, wait_ms, error_type, error, data)
SELECT coalesce((a.envelope->>'seq')::bigint, nextval('job_events_seq')), a.event_id, a.type,
       a.occurred_at, a.job_id, a.queue_name, a.envelope->>'jobType',
       (a.envelope->>'attempt')::integer, (a.envelope->>'durationMs')::integer,
       (a.envelope->>'waitMs')::integer, a.envelope->>'errorType', a.envelope->>'error',
       coalesce(a.envelope->'data', '{}'::jsonb)
  FROM audit_events a
 WHERE NOT EXISTS (SELECT 1 FROM job_events_0010 o WHERE o.event_id = a.event_id);
SELECT setval('job_events_seq', greatest(1, (SELECT max(seq) FROM job_events)));

-- One row: every committed job_events row with seq <= published_through is on the bus.
CREATE TABLE event_relay_state (
    id                smallint NOT NULL,
    published_through bigint   NOT NULL,
    CONSTRAINT event_relay_state_pkey PRIMARY KEY (id),
    CONSTRAINT event_relay_state_one_row CHECK (id = 1)
);
-- Rows published before this migration stay published; the first unpublished one and
-- everything after it is published (again): at-least-once, consumers skip what they applied.
INSERT INTO event_relay_state (id, published_through)
SELECT 1, coalesce((SELECT min(seq) - 1 FROM job_events_0010 WHERE published_at IS NULL),
                   (SELECT max(seq) FROM job_events), 0);

-- Per consumer group and bus partition ('' for the single Redis stream, 'topic:partition' for
-- Kafka): the highest seq whose effect is committed. Updated in the effect's transaction.
CREATE TABLE consumer_watermarks (
    consumer text   NOT NULL,
    part     text   NOT NULL,
    seq      bigint NOT NULL,
    CONSTRAINT consumer_watermarks_pkey PRIMARY KEY (consumer, part)
);
INSERT INTO consumer_watermarks (consumer, part, seq)
SELECT r.consumer, '', max(e.seq)
  FROM event_receipts r JOIN job_events_0010 e ON e.event_id = r.event_id
 WHERE r.consumer <> 'audit'
 GROUP BY r.consumer;

DROP TABLE audit_events;
DROP FUNCTION jobline_ensure_audit_partitions(timestamptz, integer);
DROP TABLE event_receipts;

-- The triggers of 0008/0009, plus the off switch. current_setting(..., true) is NULL when the
-- session never set it: events on.
CREATE OR REPLACE FUNCTION jobline_jobs_inserted_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('jobline.events', true) = 'off' THEN
        RETURN NULL;
    END IF;
    INSERT INTO job_events (type, occurred_at, job_id, queue_name, job_type, status, priority,
                            scheduled_for, batch_id)
    SELECT 'jobs.submitted', n.created_at, n.id, n.queue_name, n.job_type, n.status, n.priority,
           n.scheduled_for, n.batch_id
      FROM n ORDER BY n.seq;
    IF FOUND THEN
        PERFORM pg_notify('jobline_events', '');
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION jobline_jobs_updated_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('jobline.events', true) = 'off' THEN
        RETURN NULL;
    END IF;
    INSERT INTO job_events (type, occurred_at, job_id, queue_name, job_type, attempt, duration_ms,
                            wait_ms, error_type, error, data)
    SELECT e.type, n.updated_at, n.id, n.queue_name, n.job_type, e.attempt, e.duration_ms,
           e.wait_ms, e.error_type, jobline_mask_secrets(e.error), e.data
      FROM o JOIN n ON n.id = o.id
     CROSS JOIN LATERAL (
        SELECT 'jobs.started' AS type, n.attempts AS attempt, NULL::int AS duration_ms,
               least(greatest(0, extract(epoch FROM n.started_at - o.scheduled_for) * 1000),
                     2147483647)::int AS wait_ms,
               NULL::text AS error_type, NULL::text AS error, NULL::jsonb AS data
         WHERE n.status = 'processing'
        UNION ALL
        SELECT 'jobs.completed', n.attempts,
               least(greatest(0, extract(epoch FROM n.completed_at - n.started_at) * 1000),
                     2147483647)::int,
               NULL, NULL, NULL, NULL
         WHERE n.status = 'completed' AND o.status = 'processing'
        UNION ALL
        SELECT v.type, v.attempt, v.duration_ms, v.wait_ms, v.error_type, v.error, v.data
          FROM (VALUES
            (o.status = 'processing' AND n.status IN ('pending', 'scheduled', 'dead_letter')
             AND n.attempts = o.attempts, 'jobs.failed', o.attempts,
             least(greatest(0, extract(epoch FROM n.updated_at - n.started_at) * 1000), 2147483647)::int,
             NULL::int, n.error_type, n.error, NULL::jsonb),
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
         WHERE n.status NOT IN ('processing', 'completed') AND v.hit
     ) AS e
     WHERE o.status IS DISTINCT FROM n.status
     ORDER BY n.seq;
    IF FOUND THEN
        PERFORM pg_notify('jobline_events', '');
    END IF;
    RETURN NULL;
END
$$;
