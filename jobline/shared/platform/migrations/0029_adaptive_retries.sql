-- 0029: adaptive retries (issue 17). A stored policy can hand its retry decisions to the
-- advisor (jobline.shared.retry.adaptive); the submission's flag travels in the job's resolved
-- `backoff` JSON like the other retry-timing settings, so both insert paths carry it unchanged.
-- Every decision the advisor makes is kept on the attempt it was made for, so it is auditable.
ALTER TABLE retry_policies ADD COLUMN adaptive boolean;
ALTER TABLE job_attempts ADD COLUMN retry_decision jsonb;
