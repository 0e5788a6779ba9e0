-- The day's impressions (requests shown to users), for the offline replay. Bounds bound.
-- An author shown twice in one request is one impression (a loader that wrote a row again
-- must not count it twice): clicked or gifted if any copy says so, at its first time.
SELECT request_id, user_id, author_id, MIN(ts) AS ts, MAX(clicked) AS clicked,
       MAX(gifted) AS gifted
FROM impressions
WHERE ts >= :start_ms AND ts < :end_ms
  AND request_id IS NOT NULL AND user_id IS NOT NULL AND author_id IS NOT NULL
GROUP BY request_id, user_id, author_id
ORDER BY request_id, MIN(ts), author_id;
