-- Rows in each source table an import replaces (read before the replace: an import that
-- would empty a table that holds rows is refused unless forced).
SELECT 'authors' AS name, COUNT(*) AS n FROM authors
UNION ALL SELECT 'author_media', COUNT(*) FROM author_media
UNION ALL SELECT 'tip_events', COUNT(*) FROM tip_events
UNION ALL SELECT 'impressions', COUNT(*) FROM impressions
