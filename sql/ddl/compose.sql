-- Composer outputs, partitioned by ds (one row per user / author per day). Idempotent.
{% for table, id_col in [("preference_texts", "user_id"), ("author_texts", "author_id")] %}
CREATE TABLE IF NOT EXISTS {{ table }} (
    ds                 TEXT NOT NULL,
    {{ id_col }}       BIGINT NOT NULL,
    text               TEXT,
    status             TEXT NOT NULL,
    reason             TEXT,
    model_version      TEXT NOT NULL,
    prompt_version     TEXT NOT NULL,
    input_hash         TEXT NOT NULL,
    tokens_in          INTEGER NOT NULL,
    tokens_out         INTEGER NOT NULL,
    attempts           INTEGER NOT NULL,
    reused             INTEGER NOT NULL,
    authors_truncated  INTEGER NOT NULL,
    authors_omitted    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_{{ table }}_ds ON {{ table }} (ds, {{ id_col }});
{% endfor %}
