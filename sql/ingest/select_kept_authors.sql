-- The kept author set: every author that passed the filters (the candidate pool).
SELECT c.author_id, c.nickname, c.location, c.category
FROM ({% include "ingest/_classified_authors.sql" %}) c
WHERE c.reason IS NULL
ORDER BY c.author_id;
