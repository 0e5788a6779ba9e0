-- When each author's first profile row dates from (its first live: the world dates a new
-- author's profile to its first live day, the KuaiLive import to the streamer's first live),
-- among the rows known by the window's end, for the replay's cold segment. Bounds bound.
SELECT author_id, MIN(updated_at) AS since_ms
FROM authors
WHERE author_id IS NOT NULL AND updated_at IS NOT NULL AND updated_at < :end_ms
GROUP BY author_id;
