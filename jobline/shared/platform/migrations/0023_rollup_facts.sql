-- 0023: what the live rollups and `jobline analytics rebuild` need to agree row for row (issue 16,
-- docs/analytics.md "Rollups").
--
-- A rebuild recomputes every rollup grain from jobs + job_attempts; the relay folds the same
-- rollups from the outbox. Three facts of a finished attempt were only in its events, so the
-- attempt row records them now (written by COMPLETE_JOBS / FAIL_JOBS in the statement that
-- already inserts the row: no extra statement):
--   due_at      the job's scheduled_for when the attempt was claimed (wait = started_at - due_at;
--               a retry's due time was only in the jobs.retries event)
--   counted     the attempt counted (false: released at shutdown, snoozed, rate limited): only a
--               counted attempt is a "failed" attempt (the jobs.failed event)
--   next_status the job's status right after the attempt (pending/scheduled: retried,
--               dead_letter, cancelled, completed): a dead letter that was retried by hand later
--               left no other trace in jobs
-- NULL in rows written before 0023 (or by a loader that leaves them out): the rebuild infers them
-- (docs/analytics.md).
ALTER TABLE job_attempts ADD COLUMN due_at timestamptz,
                         ADD COLUMN counted boolean,
                         ADD COLUMN next_status text;

-- jobs.completed statement rows: created -> completed per job (ms, clamped like millis), for the
-- e2e histogram and e2e_sum_ms, computed by COMPLETE_JOBS from the row it updates.
ALTER TABLE job_events ADD COLUMN e2e_ms integer[];

-- The hour and day grains of 0022 start empty while the minute rows hold the history folded
-- before it: derive them once (each grain is the sum of the finer one; errors and attempts had
-- no minute rows before 0022). Skipped when something (a seed, a rebuild) already wrote them.
INSERT INTO job_rollups_hour
SELECT date_trunc('hour', minute, 'UTC'), queue_name, job_type, sum(submitted), sum(started),
       sum(completed), sum(failed), sum(retries), sum(dead_letter), sum(cancelled),
       sum(duration_sum_ms), sum(wait_sum_ms), sum(e2e_sum_ms), sum(failed_ms)
  FROM job_rollups WHERE NOT EXISTS (SELECT 1 FROM job_rollups_hour)
 GROUP BY 1, 2, 3;
INSERT INTO job_rollups_day
SELECT date_trunc('day', at, 'UTC'), queue_name, job_type, sum(submitted), sum(started),
       sum(completed), sum(failed), sum(retries), sum(dead_letter), sum(cancelled),
       sum(duration_sum_ms), sum(wait_sum_ms), sum(e2e_sum_ms), sum(failed_ms)
  FROM job_rollups_hour WHERE NOT EXISTS (SELECT 1 FROM job_rollups_day)
 GROUP BY 1, 2, 3;
INSERT INTO job_rollup_histograms_hour
SELECT date_trunc('hour', minute, 'UTC'), queue_name, job_type, metric, bucket, sum(n)
  FROM job_rollup_histograms WHERE NOT EXISTS (SELECT 1 FROM job_rollup_histograms_hour)
 GROUP BY 1, 2, 3, 4, 5;
INSERT INTO job_rollup_histograms_day
SELECT date_trunc('day', at, 'UTC'), queue_name, job_type, metric, bucket, sum(n)
  FROM job_rollup_histograms_hour WHERE NOT EXISTS (SELECT 1 FROM job_rollup_histograms_day)
 GROUP BY 1, 2, 3, 4, 5;
