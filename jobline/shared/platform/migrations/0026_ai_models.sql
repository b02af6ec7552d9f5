-- 0026: trained models (issue 17), versioned with their evaluation. The model itself is text
-- (LightGBM's model format) and its metadata JSON: nothing is ever unpickled. The API serves the
-- newest version of each kind.
CREATE TABLE ai_models (
    id          bigserial PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind ~ '^[a-z_]{1,40}$'),
    version     integer     NOT NULL,
    trained_at  timestamptz NOT NULL,
    -- the training window and sample sizes, the holdout metrics and the baseline's
    metrics     jsonb       NOT NULL,
    -- feature names, encodings, calibration and the per-feature statistics suggestions quote
    meta        jsonb       NOT NULL,
    model       text        NOT NULL,
    UNIQUE (kind, version)
);
