-- Pipeline tables, partitioned by the run's ds. Idempotent.
CREATE TABLE IF NOT EXISTS quarantine_tip_events (
    ds           TEXT NOT NULL,
    reason       TEXT NOT NULL,
    load_seq     BIGINT NOT NULL,
    event_id     BIGINT,
    user_id      BIGINT,
    author_id    BIGINT,
    live_id      BIGINT,
    ts           BIGINT,
    amount       DOUBLE PRECISION,
    ingested_at  BIGINT
);
CREATE INDEX IF NOT EXISTS ix_quarantine_tip_events_ds ON quarantine_tip_events (ds, reason);

CREATE TABLE IF NOT EXISTS quarantine_authors (
    ds          TEXT NOT NULL,
    reason      TEXT NOT NULL,
    author_id   BIGINT,
    nickname    TEXT,
    location    TEXT,
    intro       TEXT,
    category    TEXT,
    updated_at  BIGINT
);
CREATE INDEX IF NOT EXISTS ix_quarantine_authors_ds ON quarantine_authors (ds, reason);

CREATE TABLE IF NOT EXISTS dropped_users (
    ds          TEXT NOT NULL,
    user_id     BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    n_authors   INTEGER NOT NULL,
    n_tip_days  INTEGER NOT NULL,
    n_tips      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_dropped_users_ds ON dropped_users (ds, user_id);

CREATE TABLE IF NOT EXISTS dq_results (
    ds       TEXT NOT NULL,
    name     TEXT NOT NULL,
    value    DOUBLE PRECISION,
    lower    DOUBLE PRECISION,
    upper    DOUBLE PRECISION,
    passed   INTEGER NOT NULL,
    detail   TEXT
);
