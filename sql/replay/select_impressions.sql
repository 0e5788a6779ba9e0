-- The day's impressions (requests shown to users), for the offline replay. Bounds bound.
SELECT request_id, user_id, author_id, ts, clicked, gifted
FROM impressions
WHERE ts >= :start_ms AND ts < :end_ms
  AND request_id IS NOT NULL AND user_id IS NOT NULL AND author_id IS NOT NULL
ORDER BY request_id, ts;
