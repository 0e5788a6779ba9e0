-- Source tables of the demo world, shaped like KuaiLive. Run by the world generator only:
-- the pipeline never issues DDL on source tables (a missing one is MissingSourceTable).
CREATE TABLE IF NOT EXISTS tip_events (
    load_seq     BIGINT NOT NULL PRIMARY KEY,
    event_id     BIGINT,
    user_id      BIGINT,
    author_id    BIGINT,
    live_id      BIGINT,
    ts           BIGINT,
    amount       DOUBLE PRECISION,
    ingested_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_tip_events_ts ON tip_events (ts);
CREATE INDEX IF NOT EXISTS ix_tip_events_ingested ON tip_events (ingested_at);

CREATE TABLE IF NOT EXISTS authors (
    author_id   BIGINT,
    nickname    TEXT,
    location    TEXT,
    intro       TEXT,
    category    TEXT,
    updated_at  BIGINT
);
CREATE INDEX IF NOT EXISTS ix_authors_id ON authors (author_id);

CREATE TABLE IF NOT EXISTS author_media (
    author_id      BIGINT,
    live_id        BIGINT,
    ts             BIGINT,
    frame_uri      TEXT,
    frame_caption  TEXT,
    asr_text       TEXT
);
CREATE INDEX IF NOT EXISTS ix_author_media_author ON author_media (author_id);

CREATE TABLE IF NOT EXISTS live_comments (
    author_id  BIGINT,
    live_id    BIGINT,
    ts         BIGINT,
    text       TEXT
);
CREATE INDEX IF NOT EXISTS ix_live_comments_author ON live_comments (author_id);

-- Who is live when: one row per live room, from its first start to its last end.
CREATE TABLE IF NOT EXISTS live_rooms (
    live_id    BIGINT,
    author_id  BIGINT,
    start_ts   BIGINT,
    end_ts     BIGINT
);
CREATE INDEX IF NOT EXISTS ix_live_rooms_start ON live_rooms (start_ts);

CREATE TABLE IF NOT EXISTS impressions (
    request_id  BIGINT,
    user_id     BIGINT,
    author_id   BIGINT,
    ts          BIGINT,
    clicked     INTEGER,
    gifted      INTEGER
);
CREATE INDEX IF NOT EXISTS ix_impressions_ts ON impressions (ts);
