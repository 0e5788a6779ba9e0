-- Live rooms overlapping [start_ms, end_ms): who could be live at any moment of the window.
SELECT author_id, start_ts, end_ts
FROM live_rooms
WHERE start_ts < :end_ms AND end_ts >= :start_ms
ORDER BY start_ts, author_id
