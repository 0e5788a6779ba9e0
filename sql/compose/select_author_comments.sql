SELECT author_id, ts, text
FROM live_comments
WHERE author_id IS NOT NULL AND ts < :end_ms
ORDER BY author_id, ts DESC;
