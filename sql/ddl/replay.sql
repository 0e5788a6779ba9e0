-- Offline replay metrics: one row per (ds, metric, model). kind: mspa | baseline | reference.
-- value is NULL when a metric is undefined for the day (e.g. no user with both classes).
CREATE TABLE IF NOT EXISTS replay_metrics (
    ds             TEXT NOT NULL,
    metric         TEXT NOT NULL,
    model          TEXT NOT NULL,
    kind           TEXT NOT NULL,
    value          DOUBLE PRECISION,
    n              BIGINT NOT NULL,
    model_version  TEXT NOT NULL,
    computed_at    TEXT NOT NULL,
    PRIMARY KEY (ds, metric, model)
);
