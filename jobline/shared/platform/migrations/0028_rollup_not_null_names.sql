-- 0028: the hour/day rollup tables of 0022 were made with LIKE and their "minute" column renamed
-- to "at"; PostgreSQL 18 names NOT NULL constraints and kept the copied name
-- (job_rollups_minute_not_null on job_rollups_hour.at). Give each the name PostgreSQL would
-- give it, so the schema reads the same on 14-17 (which have no NOT NULL constraint rows: the
-- loop finds nothing there) and 18.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT t.relname, c.conname, a.attname
          FROM pg_constraint c
          JOIN pg_class t ON t.oid = c.conrelid
          JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()
          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
         WHERE c.contype = 'n'
           AND (t.relname LIKE 'job\_rollup%\_hour' OR t.relname LIKE 'job\_rollup%\_day')
           AND c.conname <> t.relname || '_' || a.attname || '_not_null'
    LOOP
        EXECUTE format('ALTER TABLE %I RENAME CONSTRAINT %I TO %I', r.relname, r.conname,
                       r.relname || '_' || r.attname || '_not_null');
    END LOOP;
END
$$;
