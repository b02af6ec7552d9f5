-- What an index of jobs costs a completion (docs/performance.md, "A completion writes one index
-- entry fewer"). Against any migrated Jobline database (it only creates and drops uj/ub):
--   psql "$URL" -X -v QSS="CREATE INDEX ON uj (queue_name, status, scheduled_for);" -f bench/completion_index.sql
--   psql "$URL" -X -v QSS="CREATE INDEX ON uj (queue_name, status, scheduled_for) WHERE status <> ALL ('{completed,cancelled}'::text[]);" -f bench/completion_index.sql
-- and compare the "select+update" NOTICE (300,000 completions in statements of 25).
\timing on
DROP TABLE IF EXISTS uj;
CREATE TABLE uj AS SELECT * FROM jobs LIMIT 0;
ALTER TABLE uj ADD PRIMARY KEY (id);
CREATE INDEX ON uj (status, id); CREATE INDEX ON uj (job_type, id);
CREATE INDEX ON uj (lease_expires_at) WHERE status = 'processing';
:QSS
INSERT INTO uj (id, seq, queue_name, job_type, payload, status, priority, max_attempts, created_at, scheduled_for, updated_at, attempts, lease_token, lease_expires_at, started_at, worker_id)
SELECT jobline_uuid7(), g, 'q' || (g % 10), 't' || (g % 7), '{}', 'processing', 0, 3, now(), now(), now(), 1, 1, now() + interval '30 s', now(), 'w' FROM generate_series(1, 300000) g;
VACUUM ANALYZE uj;
DROP TABLE IF EXISTS ub; CREATE TABLE ub AS SELECT (seq-1)/25 AS b, array_agg(id) AS ids FROM uj GROUP BY 1; CREATE INDEX ON ub (b); ANALYZE ub;
-- completions: 12,000 statements of 25 jobs each, as the engine batches them
DO $$ DECLARE ids uuid[]; t0 timestamptz := clock_timestamp(); BEGIN
  FOR i IN 0..11999 LOOP
    SELECT ub.ids INTO ids FROM ub WHERE b = i;
  END LOOP;
  RAISE NOTICE 'select only: %', clock_timestamp() - t0;
  t0 := clock_timestamp();
  FOR i IN 0..11999 LOOP
    SELECT ub.ids INTO ids FROM ub WHERE b = i;
    UPDATE uj SET status = 'completed', completed_at = now(), lease_token = lease_token, lease_expires_at = NULL, worker_id = NULL, updated_at = now() WHERE id = ANY(ids);
  END LOOP;
  RAISE NOTICE 'select+update: %', clock_timestamp() - t0;
END $$;
DROP TABLE uj, ub;
