-- The registries: one row per version of a trained model.
-- model_registry: MSPA's aligned LLM (the recommender model the composer writes with).
-- encoder_registry: the text encoder aligned to the interactions (the vectors' encoder).
-- status: champion (exactly one per registry, serving) | rejected | retired.
-- metrics: JSON with the version's and the then-champion's figures measured in the same run.
{% for table in ["model_registry", "encoder_registry"] %}
CREATE TABLE IF NOT EXISTS {{ table }} (
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
CREATE INDEX IF NOT EXISTS ix_{{ table }}_status ON {{ table }} (status);
{% endfor %}
