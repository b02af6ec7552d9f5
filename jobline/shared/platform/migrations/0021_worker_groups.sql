-- 0021: worker groups (issue 19): the desired process count of each group lives here, so every
-- supervisor, the API, the autoscaler and KEDA read one truth instead of a process's memory.
--
-- worker_groups.desired is what the group's supervisor converges to; autoscale (NULL: manual)
-- holds {min, max, targetBacklogPerWorker, latencySlaMs, upCooldownS, downCooldownS,
-- hysteresis, queues}; scaled_at/scaled_reason are the last change (cooldowns read scaled_at).
-- worker_group_history is one row per group and minute (count, utilization, crashes) for the
-- Workers page and the worker-hours figures; worker_crashes records every worker that ended
-- without a clean stop (a supervisor's non-zero exit, or a heartbeat that vanished).
CREATE TABLE worker_groups (
    name           text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    desired        integer NOT NULL CHECK (desired BETWEEN 0 AND 1000),
    autoscale      jsonb,
    scaled_at      timestamptz,
    scaled_reason  text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    updated_by     text
);

CREATE TABLE worker_group_history (
    group_name  text NOT NULL,
    minute      timestamptz NOT NULL,
    desired     integer NOT NULL,
    actual      integer NOT NULL,
    busy        integer NOT NULL,
    capacity    integer NOT NULL,
    PRIMARY KEY (group_name, minute)
);

CREATE TABLE worker_crashes (
    worker_id   text PRIMARY KEY,
    group_name  text NOT NULL,
    at          timestamptz NOT NULL,
    exit_code   integer,
    detail      text
);
CREATE INDEX worker_crashes_group_at ON worker_crashes (group_name, at);
