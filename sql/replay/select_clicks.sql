-- Clicks in a window (the model day's), for the replay's segments: which authors a user
-- had already watched, and how much attention each author had. Bounds bound.
SELECT user_id, author_id, ts
FROM impressions
WHERE ts >= :start_ms AND ts < :end_ms AND clicked = 1
  AND user_id IS NOT NULL AND author_id IS NOT NULL
ORDER BY ts;
