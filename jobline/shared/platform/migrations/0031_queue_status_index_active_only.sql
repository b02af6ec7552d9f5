-- 0031: the (queue, status, due) index holds live jobs only, not the finished history.
--
-- Every read through it asks for a live state of one queue: the oldest pending job and the
-- backlog (monitoring, the scaler, alert metrics), a job's position among the pending and
-- scheduled ones, the dead letters of a queue. None asks for completed or cancelled jobs (the job
-- list orders by id and goes through (status, id)). Yet those are nearly every stored row (95%
-- of the 100M-job seed), so the index was mostly history: every completion inserted an entry
-- nobody reads, and building it was the largest part of loading a seed's partitions.
-- Predicates such as status = 'pending' or status = ANY('{pending,scheduled}') imply this one,
-- so the planner still uses it (tests/test_migrations.py checks the plans).
DROP INDEX jobs_queue_status_sched;
CREATE INDEX jobs_queue_status_sched ON jobs (queue_name, status, scheduled_for)
    WHERE status <> ALL ('{completed,cancelled}'::text[]);
