-- The recommender model registry: one row per model version (MSPA's aligned LLM).
-- status: champion (exactly one, serving the composer) | rejected | retired.
-- metrics: JSON with the version's and the then-champion's Acc@m measured in the same run.
CREATE TABLE IF NOT EXISTS model_registry (
    version        TEXT PRIMARY KEY,
    ds             TEXT,
    base_version   TEXT,
    artifact_uri   TEXT NOT NULL,
    model_ref      TEXT NOT NULL,
    status         TEXT NOT NULL,
    reason         TEXT NOT NULL,
    metrics        TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    decided_at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_model_registry_status ON model_registry (status);
