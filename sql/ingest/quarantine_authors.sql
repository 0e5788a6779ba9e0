-- Every rejected author row of :ds, all columns, with its reason.
INSERT INTO quarantine_authors
    (ds, reason, author_id, nickname, location, intro, category, updated_at)
SELECT :ds, c.reason, c.author_id, c.nickname, c.location, c.intro, c.category, c.updated_at
FROM ({% include "ingest/_classified_authors.sql" %}) c
WHERE c.reason IS NOT NULL;
