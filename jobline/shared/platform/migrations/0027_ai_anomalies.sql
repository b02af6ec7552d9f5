-- 0027: anomaly episodes (issue 17, jobline/analytics/ai/anomaly.py). One row per episode of a
-- (queue, metric): detected_at when it was confirmed, last_seen_at while the score stays high,
-- ended_at once it has been quiet; the value, its seasonal baseline and the robust score at
-- detection, the possible causes computed from the rollups.
CREATE TABLE ai_anomalies (
    id              bigserial PRIMARY KEY,
    queue_name      text             NOT NULL,
    metric          text             NOT NULL,
    detected_at     timestamptz      NOT NULL,
    last_seen_at    timestamptz      NOT NULL,
    ended_at        timestamptz,
    current_value   double precision NOT NULL,
    baseline        double precision NOT NULL,
    score           double precision NOT NULL,
    peak_score      double precision NOT NULL,
    possible_causes jsonb            NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX ai_anomalies_detected ON ai_anomalies (detected_at);
CREATE UNIQUE INDEX ai_anomalies_one_open ON ai_anomalies (queue_name, metric) WHERE ended_at IS NULL;

-- Small durable state of the AI loops (the last minute the anomaly detector covered).
CREATE TABLE ai_state (
    key   text PRIMARY KEY,
    value text NOT NULL
);
