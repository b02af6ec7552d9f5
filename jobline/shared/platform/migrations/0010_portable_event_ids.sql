-- 0010: event ids without PostgreSQL 18's uuidv7(), so the schema installs on PostgreSQL 14-18.
--
-- The first text of 0006 gave job_events.event_id the default uuidv7(), a built-in only from
-- PostgreSQL 18, and so failed on every older server. 0006 now creates jobline_uuid7() and uses
-- it; a PostgreSQL 18 database that applied the first text (its checksum is accepted, see
-- SUPERSEDED in migrate.py) is brought to the same schema here. On a fresh database both
-- statements restate what 0006 just did. The layout is explained in 0006.
CREATE OR REPLACE FUNCTION jobline_uuid7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(overlay(uuid_send(gen_random_uuid()) PLACING
               int8send((floor(date_part('epoch', clock_timestamp()) * 1000)::bigint << 16)
                        | 28672 | floor(random() * 4096)::bigint)
               FROM 1 FOR 8), 'hex')::uuid
$$;

ALTER TABLE job_events ALTER COLUMN event_id SET DEFAULT jobline_uuid7();
