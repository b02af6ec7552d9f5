-- 0008: the same events from the UPDATE trigger, computed more cheaply.
--
-- 0006 built a seven-row VALUES table per changed job and filtered it, so every claim and every
-- completion paid for all seven rows' expressions (two jsonb_build_object calls among them).
-- Measured on the processing benchmark that was ~15 µs of PostgreSQL CPU per job, about a fifth
-- of all PostgreSQL time. Claims and completions are nearly every update, so they now take a
-- one-row branch each; the VALUES table remains for the rare transitions (fail, retry,
-- dead-letter, cancel). Each branch's condition refers only to the outer row, so the planner
-- makes it a one-time filter and skips the branches that do not apply. The emitted events (type,
-- fields, order) are exactly those of 0006; tests/test_events.py checks them.
CREATE OR REPLACE FUNCTION jobline_jobs_updated_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_events (type, occurred_at, job_id, queue_name, job_type, attempt, duration_ms,
                            wait_ms, error_type, error, data)
    SELECT e.type, n.updated_at, n.id, n.queue_name, n.job_type, e.attempt, e.duration_ms,
           e.wait_ms, e.error_type, jobline_mask_secrets(e.error), e.data
      FROM o JOIN n ON n.id = o.id
     CROSS JOIN LATERAL (
        -- claimed: the wait is from when the job became due (submission for an immediate job,
        -- the retry time for a retry) to its start
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
            -- a failed attempt that counted (a released or snoozed one gives the attempt back)
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
