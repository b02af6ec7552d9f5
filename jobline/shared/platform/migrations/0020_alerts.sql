-- 0020: alerting (jobline/analytics/alerting, docs/alerts.md): notification channels, rules with
-- their evaluation state, the alerts they raised, per-channel delivery records and silences.
--
-- The evaluation state lives on the rule row: the scheduler's alert loop takes due rules with
-- FOR UPDATE SKIP LOCKED and advances next_eval_at in the transaction that records the rule's
-- new state and its alerts and deliveries, so with any number of schedulers each evaluation
-- happens once and each transition is recorded (and notified) once, and a restart keeps the
-- state (a rule pending for 3 minutes of its 5 is still pending since the same instant).

CREATE TABLE alert_channels (
    id          uuid        NOT NULL,
    name        text        NOT NULL,
    -- email (SMTP), slack (incoming webhook), webhook (JSON, HMAC-SHA256 signed)
    kind        text        NOT NULL,
    -- kind-specific settings, secrets included (masked on every read by the application)
    config      jsonb       NOT NULL,
    enabled     boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    CONSTRAINT alert_channels_pkey PRIMARY KEY (id),
    CONSTRAINT alert_channels_kind_check CHECK (kind IN ('email', 'slack', 'webhook'))
);

CREATE TABLE alert_rules (
    id             uuid        NOT NULL,
    name           text        NOT NULL,
    -- set for the rules Jobline ships (e.g. 'dead_letters'): they can be changed, not deleted
    builtin        text,
    -- {"metric": ..., "op": ..., "threshold": ..., "windowS": ..., ...} (docs/alerts.md)
    condition      jsonb       NOT NULL,
    scope_queue    text,
    scope_job_type text,
    for_ms         bigint      NOT NULL DEFAULT 0,
    severity       text        NOT NULL DEFAULT 'warning',
    channel_ids    uuid[]      NOT NULL DEFAULT '{}',
    -- 0: notify a firing alert once; otherwise again every renotify_ms while it fires
    renotify_ms    bigint      NOT NULL DEFAULT 0,
    enabled        boolean     NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    -- evaluation state: ok | pending | firing (resolved is a transition back to ok)
    state          text        NOT NULL DEFAULT 'ok',
    state_since    timestamptz,
    last_value     double precision,
    last_eval_at   timestamptz,
    next_eval_at   timestamptz NOT NULL,
    evaluations    bigint      NOT NULL DEFAULT 0,
    -- the alert (history row) of the current pending/firing episode
    alert_id       uuid,
    -- what a stateful metric remembers between evaluations (dead-letter count seen last)
    memory         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT alert_rules_pkey PRIMARY KEY (id),
    CONSTRAINT alert_rules_builtin_key UNIQUE (builtin),
    CONSTRAINT alert_rules_state_check CHECK (state IN ('ok', 'pending', 'firing')),
    CONSTRAINT alert_rules_severity_check CHECK (severity IN ('info', 'warning', 'critical'))
);
CREATE INDEX alert_rules_due ON alert_rules (next_eval_at) WHERE enabled;

-- One row per episode: from the condition holding (pending) to firing to resolved.
CREATE TABLE alerts (
    id              uuid        NOT NULL,
    rule_id         uuid        NOT NULL,
    rule_name       text        NOT NULL,
    severity        text        NOT NULL,
    -- pending | firing | resolved | cancelled (pending that cleared before its for duration)
    status          text        NOT NULL,
    scope_queue     text,
    scope_job_type  text,
    value           double precision,
    peak_value      double precision,
    summary         text        NOT NULL,
    details         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    started_at      timestamptz NOT NULL,
    fired_at        timestamptz,
    resolved_at     timestamptz,
    last_notified_at timestamptz,
    -- notifications were suppressed by a silence (the transitions are still recorded)
    silenced        boolean     NOT NULL DEFAULT false,
    acknowledged_at timestamptz,
    acknowledged_by text,
    CONSTRAINT alerts_pkey PRIMARY KEY (id),
    CONSTRAINT alerts_status_check CHECK (status IN ('pending', 'firing', 'resolved', 'cancelled'))
);
CREATE INDEX alerts_started ON alerts (started_at DESC, id DESC);
CREATE INDEX alerts_rule ON alerts (rule_id, started_at DESC);
CREATE INDEX alerts_open ON alerts (status) WHERE status IN ('pending', 'firing');

-- One message to one recipient of one channel. Delivered by a job (queue jobline.alerts) whose
-- payload is only this row's id: no secret ever sits in a job payload.
CREATE TABLE alert_deliveries (
    id           uuid        NOT NULL,
    -- NULL for a channel test
    alert_id     uuid,
    channel_id   uuid        NOT NULL,
    channel_name text        NOT NULL,
    kind         text        NOT NULL,
    -- index of the recipient within the channel's list (slack/webhook URLs); 0 for email
    recipient    integer     NOT NULL DEFAULT 0,
    -- firing | resolved | renotify | test
    event        text        NOT NULL,
    -- queued | retrying | sent | failed
    status       text        NOT NULL DEFAULT 'queued',
    attempts     integer     NOT NULL DEFAULT 0,
    last_error   text,
    job_id       uuid,
    -- the message as rendered at transition time (values, links); secrets are not in it
    message      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    sent_at      timestamptz,
    CONSTRAINT alert_deliveries_pkey PRIMARY KEY (id),
    CONSTRAINT alert_deliveries_status_check CHECK (status IN ('queued', 'retrying', 'sent', 'failed'))
);
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id, created_at);
-- deliveries committed but whose job was not submitted yet (a crash between the two)
CREATE INDEX alert_deliveries_unsubmitted ON alert_deliveries (created_at) WHERE job_id IS NULL;

CREATE TABLE alert_silences (
    id          uuid        NOT NULL,
    -- what is muted: a rule, a queue, a job type (NULL matches any); all NULL mutes everything
    rule_id     uuid,
    queue       text,
    job_type    text,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    created_by  text,
    created_at  timestamptz NOT NULL,
    CONSTRAINT alert_silences_pkey PRIMARY KEY (id)
);
CREATE INDEX alert_silences_ends ON alert_silences (ends_at);

-- The built-in dead-letter rule (the seed's notifyAdmins): fires when jobs entered the
-- dead-letter queue in the last 5 minutes, one episode (and one notification, with the count)
-- however many dead letters it groups; attach channels to it to be told.
INSERT INTO alert_rules (id, name, builtin, condition, for_ms, severity, renotify_ms, created_at,
                         updated_at, next_eval_at)
VALUES ('00000000-0000-7000-8000-0000000a1e70', 'Jobs dead-lettered', 'dead_letters',
        '{"metric": "dlq_growth", "op": ">", "threshold": 0, "windowS": 300, "targetMs": null, "minSamples": 1}'::jsonb,
        0, 'warning', 3600000, now(), now(), now());
