-- Rejected rows of :ds by source table and reason.
SELECT 'tip_events' AS source, reason, COUNT(*) AS n
FROM quarantine_tip_events WHERE ds = :ds GROUP BY reason
UNION ALL
SELECT 'authors' AS source, reason, COUNT(*) AS n
FROM quarantine_authors WHERE ds = :ds GROUP BY reason
ORDER BY source, reason;
