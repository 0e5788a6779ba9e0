-- Rows an importer of outside data (python -m mspa_tasks import-kuailive) could not load
-- into the source tables, one per rejected CSV line, with its reason. Replaced per source on
-- every import, like the source tables themselves.
CREATE TABLE IF NOT EXISTS import_rejects (
    source       TEXT NOT NULL,    -- e.g. kuailive
    file         TEXT NOT NULL,    -- e.g. gift.csv
    line         BIGINT NOT NULL,  -- 1 is the header
    reason       TEXT NOT NULL,
    detail       TEXT,
    raw          TEXT,
    imported_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_import_rejects_source ON import_rejects (source, file, reason);
