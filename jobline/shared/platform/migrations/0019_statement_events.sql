-- 0019: one outbox row per statement for the three events every job has (issue 14).
--
-- Measured (bench/shipped.py): with one job_events row per submitted, started and completed
-- job, the shipped stack drained at 0.58-0.66 of its rate with events off; per job PostgreSQL
-- spent ~41 µs more (two rows into a partitioned table with three indexes), the relay ~50 µs
-- (an envelope and a fold per row) and Valkey ~16 µs (a stream entry per row). Claims and
-- completions are batched statements (tens of jobs each under load), so a row per statement
-- makes every one of those costs per batch.
--
-- Now jobs.submitted (the insert trigger), jobs.started and jobs.completed (the claim and
-- completion statements themselves, jobline/shared/core/sql.py) are written as *statement
-- rows*: one row
-- per (statement, type, queue, job type, minute of the event time[, status, batch], jobs.seq /
-- 1000), so at most 1,000 jobs each, with the per-job values in arrays (aggregated unsorted:
-- the aggregates of one group see its rows in the same order, so the arrays stay aligned; one
-- job appears once per statement, so no order among them matters): job_ids, at_ms (each event's time, epoch
-- ms), attempts, millis (wait for started, run duration for completed), priorities and due
-- (submitted). n is the number of events; NULL on the one-event rows every other event type
-- keeps (failures, retries, dead letters, cancels, emit()). occurred_at is the earliest time of
-- the row; every time in it is in the same minute (so the rollups fold a row as one minute and
-- an audit time filter needs only a minute of slack). event_id of a statement row has its low
-- 16 bits zero: event i of the row has id event_id + i (docs/events.md).
--
-- One job's events are found through job_events_job_ids (GIN; fastupdate keeps the insert
-- cost a pending-list append).

ALTER TABLE job_events
    ADD COLUMN n          integer,
    ADD COLUMN job_ids    uuid[],
    ADD COLUMN at_ms      bigint[],
    ADD COLUMN attempts   integer[],
    ADD COLUMN millis     integer[],
    ADD COLUMN priorities smallint[],
    ADD COLUMN due_ms     bigint[];

CREATE INDEX job_events_job_ids ON job_events USING gin (job_ids);

-- A statement row's base id: a uuid7 whose low 16 bits are zero.
CREATE FUNCTION jobline_event_base_id() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(overlay(uuid_send(jobline_uuid7()) PLACING '\x0000'::bytea FROM 15 FOR 2),
                  'hex')::uuid
$$;

CREATE OR REPLACE FUNCTION jobline_jobs_inserted_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('jobline.events', true) = 'off' THEN
        RETURN NULL;
    END IF;
    INSERT INTO job_events (event_id, type, occurred_at, queue_name, job_type, status, batch_id,
                            n, job_ids, at_ms, priorities, due_ms)
    SELECT jobline_event_base_id(), 'jobs.submitted', min(n.created_at), n.queue_name,
           n.job_type, n.status, n.batch_id, count(*), array_agg(n.id),
           array_agg((extract(epoch FROM n.created_at) * 1000)::bigint), array_agg(n.priority),
           array_agg((extract(epoch FROM n.scheduled_for) * 1000)::bigint)
      FROM n
     GROUP BY n.queue_name, n.job_type, n.status, n.batch_id, date_trunc('minute', n.created_at),
              n.seq / 1000;
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
    -- Claims and completions (-> processing, -> completed) write their own statement rows
    -- (CLAIM_JOBS, COMPLETE_JOBS: the only statements that make those transitions); planning
    -- this function's query over the transition tables again on every call cost ~170 µs per
    -- statement. A statement that changed no job to any other status (claims, completions,
    -- lease extensions) only wakes the relay.
    IF NOT EXISTS (SELECT 1 FROM n WHERE n.status NOT IN ('processing', 'completed')) THEN
        PERFORM pg_notify('jobline_events', '');
        RETURN NULL;
    END IF;
    -- everything else: a row per event, as 0011 wrote them
    INSERT INTO job_events (type, occurred_at, job_id, queue_name, job_type, attempt, duration_ms,
                            wait_ms, error_type, error, data)
    SELECT v.type, n.updated_at, n.id, n.queue_name, n.job_type, v.attempt, v.duration_ms,
           v.wait_ms, v.error_type, jobline_mask_secrets(v.error), v.data
      FROM o JOIN n ON n.id = o.id
     CROSS JOIN LATERAL (VALUES
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
     WHERE o.status IS DISTINCT FROM n.status
       AND n.status NOT IN ('processing', 'completed') AND v.hit
     ORDER BY n.seq;
    IF FOUND THEN
        PERFORM pg_notify('jobline_events', '');
    END IF;
    RETURN NULL;
END
$$;
