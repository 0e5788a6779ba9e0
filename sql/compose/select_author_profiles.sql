-- Latest profile row per author (the composer reads only kept authors' rows).
SELECT author_id, nickname, location, category, intro, updated_at
FROM authors
WHERE author_id IS NOT NULL
ORDER BY author_id, updated_at DESC;
