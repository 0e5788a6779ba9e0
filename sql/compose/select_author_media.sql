-- Frames (captions, URIs) and ASR before the window's end, newest first: no future leakage
-- when a past day is backfilled.
SELECT author_id, ts, frame_uri, frame_caption, asr_text
FROM author_media
WHERE author_id IS NOT NULL AND ts < :end_ms
ORDER BY author_id, ts DESC;
