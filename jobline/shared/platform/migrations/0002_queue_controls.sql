-- 0002: queue controls (pause/resume, global in-flight cap).
--
-- Postgres holds the truth; the Redis meta hash of each queue mirrors it so claim.lua can honour
-- it inside the claim. controls_version increases with every change: the Redis mirror applies a
-- write only if it is newer than what it holds, so two racing changes cannot leave Redis on the
-- older one, and reconcile can always re-apply the current row.

ALTER TABLE queues
    ADD COLUMN paused           boolean NOT NULL DEFAULT false,
    ADD COLUMN max_in_flight    integer,
    ADD COLUMN controls_version bigint  NOT NULL DEFAULT 0,
    ADD CONSTRAINT queues_max_in_flight_check CHECK (max_in_flight IS NULL OR max_in_flight >= 0);
