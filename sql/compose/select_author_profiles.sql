-- The day's profile of every author (the rule of ingest/_author_profiles.sql: the same row
-- ingest kept, so the vector's category/location match the text it came from).
SELECT p.author_id, p.nickname, p.location, p.category, p.intro, p.updated_at
FROM ({% include "ingest/_author_profiles.sql" %}) p
WHERE p.rn = 1 AND p.author_id IS NOT NULL
ORDER BY p.author_id;
