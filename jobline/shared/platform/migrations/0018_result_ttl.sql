-- 0018: result expiry.
--
-- result_ttl_s is the submission's own TTL (NULL: the handler's @job(result_ttl=...), else the
-- global JOBLINE_RESULT_TTL_S). The completing statement stamps result_expires_at from it; the
-- scheduler clears results whose time has come in batches and records result_expired_at, so a
-- read can say "expired" rather than "no result". The partial index holds only jobs with a
-- result still to expire, so the sweep never walks the whole table.
ALTER TABLE jobs
    ADD COLUMN result_ttl_s       integer,
    ADD COLUMN result_expires_at  timestamptz,
    ADD COLUMN result_expired_at  timestamptz;

CREATE INDEX jobs_result_expires ON jobs (result_expires_at) WHERE result_expires_at IS NOT NULL;
