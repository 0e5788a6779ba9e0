SELECT file, reason, COUNT(*) AS n
FROM import_rejects
WHERE source = :source
GROUP BY file, reason
ORDER BY file, reason;
