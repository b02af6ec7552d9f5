-- 0015: per-(queue, status) job counts maintained by the database, so the queue overview
-- (GET /api/v1/queues, GraphQL `queues`, the dashboard's Queues page) never scans `jobs`.
--
-- Writers do not touch a shared counter row: a hot row would serialise every transition of a
-- queue (each UPDATE of it waits for the previous writer's commit). Instead, statement-level
-- triggers append one row per (queue, status) that a statement changed, with the net change,
-- to the heap-only, index-free `queue_count_deltas` (a claim of 100 jobs appends 2 rows:
-- pending -100, processing +100). `jobline_fold_queue_counts()` (run by the scheduler every
-- second, and by a reader that finds many unfolded rows) moves the deltas into `queue_counts`
-- in one transaction. A reader sums `queue_counts` and the unfolded deltas in one statement (one
-- snapshot), so it sees each committed transition exactly once, folded or not; its cost depends
-- on the number of queues and of statements since the last fold, never on the number of jobs.
--
-- These triggers are separate from the event triggers (0006/0008 and later): counts are not
-- events and must stay on when event emission is turned off.

CREATE TABLE queue_counts (
    queue_name text   NOT NULL,
    status     text   NOT NULL,
    n          bigint NOT NULL,
    CONSTRAINT queue_counts_pkey PRIMARY KEY (queue_name, status)
) WITH (fillfactor = 50);

-- Append-only between folds; a fold deletes what it read. Autovacuum is told to come often,
-- because the table turns over completely every fold interval.
CREATE TABLE queue_count_deltas (
    queue_name text   NOT NULL,
    status     text   NOT NULL,
    delta      bigint NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
        autovacuum_vacuum_insert_threshold = 5000, autovacuum_vacuum_insert_scale_factor = 0);

CREATE FUNCTION jobline_queue_counts_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queue_count_deltas (queue_name, status, delta)
    SELECT queue_name, status, count(*) FROM n GROUP BY queue_name, status;
    RETURN NULL;
END
$$;

-- +1 for every new row version, -1 for every old one, netted per (queue, status): writes that
-- keep the status (heartbeats, lease extensions, results) net to zero and append nothing.
CREATE FUNCTION jobline_queue_counts_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queue_count_deltas (queue_name, status, delta)
    SELECT queue_name, status, sum(d)
      FROM (SELECT queue_name, status, 1 AS d FROM n
            UNION ALL
            SELECT queue_name, status, -1 FROM o) AS t
     GROUP BY queue_name, status
    HAVING sum(d) <> 0;
    RETURN NULL;
END
$$;

CREATE FUNCTION jobline_queue_counts_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queue_count_deltas (queue_name, status, delta)
    SELECT queue_name, status, -count(*) FROM o GROUP BY queue_name, status;
    RETURN NULL;
END
$$;

-- TRUNCATE jobs empties every partition: nothing is left to count.
CREATE FUNCTION jobline_queue_counts_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM queue_count_deltas;
    DELETE FROM queue_counts;
    RETURN NULL;
END
$$;

-- Folds the unfolded deltas into queue_counts. Returns how many delta rows it folded, or -1 when
-- another fold holds the lock (folds are serialised so two never upsert the same rows in
-- different orders; a skipped fold loses nothing, the rows wait for the next one). Rows a
-- still-open writer appended are invisible to the DELETE, so they stay for a later fold.
CREATE FUNCTION jobline_fold_queue_counts() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    folded bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7261531) THEN
        RETURN -1;
    END IF;
    WITH d AS (
        DELETE FROM queue_count_deltas RETURNING queue_name, status, delta
    ), s AS (
        SELECT queue_name, status, sum(delta) AS n, count(*) AS k FROM d GROUP BY queue_name, status
    ), up AS (
        INSERT INTO queue_counts AS c (queue_name, status, n)
        SELECT queue_name, status, n FROM s ORDER BY queue_name, status
        ON CONFLICT (queue_name, status) DO UPDATE SET n = c.n + excluded.n
    )
    SELECT coalesce(sum(k), 0) INTO folded FROM s;
    RETURN folded;
END
$$;

-- Drops one monthly partition of jobs (and its job_attempts twin), taking its jobs out of the
-- counts first: DROP TABLE fires no row or statement trigger, so retention must go through
-- here. Counting the partition is one scan of rows that are about to be deleted anyway.
CREATE FUNCTION jobline_drop_jobs_partition(part text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    gone bigint;
    twin text := regexp_replace(part, '^jobs_', 'job_attempts_');
BEGIN
    IF part !~ '^jobs_p[0-9]{6}$' THEN
        RAISE EXCEPTION 'not a monthly jobs partition: %', part;
    END IF;
    EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', part);
    EXECUTE format('INSERT INTO queue_count_deltas (queue_name, status, delta)
                    SELECT queue_name, status, -count(*) FROM %I GROUP BY queue_name, status', part);
    EXECUTE format('SELECT count(*) FROM %I', part) INTO gone;
    EXECUTE format('ALTER TABLE jobs DETACH PARTITION %I', part);
    EXECUTE format('DROP TABLE %I', part);
    IF to_regclass(twin) IS NOT NULL THEN
        EXECUTE format('ALTER TABLE job_attempts DETACH PARTITION %I', twin);
        EXECUTE format('DROP TABLE %I', twin);
    END IF;
    RETURN gone;
END
$$;

-- Writers wait here while the backfill counts, so no transition falls between the two.
LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE;

CREATE TRIGGER jobs_counts_inserted AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION jobline_queue_counts_inserted();
CREATE TRIGGER jobs_counts_updated AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS o NEW TABLE AS n
    FOR EACH STATEMENT EXECUTE FUNCTION jobline_queue_counts_updated();
CREATE TRIGGER jobs_counts_deleted AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS o FOR EACH STATEMENT EXECUTE FUNCTION jobline_queue_counts_deleted();
CREATE TRIGGER jobs_counts_truncated AFTER TRUNCATE ON jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobline_queue_counts_truncated();

INSERT INTO queue_counts (queue_name, status, n)
SELECT queue_name, status, count(*) FROM jobs GROUP BY queue_name, status;
