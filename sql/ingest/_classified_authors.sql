{#- Every author row known by the window's end with its rejection reason (NULL = kept); the
    profile rule is `_author_profiles.sql`. The no-text and no-image rules apply where the
    source's settings ask for them (:require_text, :require_image: 1 or 0). An intro is blank when
    nothing is left after trimming :blank_chars (mspa_tasks.text: Unicode whitespace and
    zero-width characters, the same definition as Python's). Included, not run alone. -#}
SELECT
    a.author_id, a.nickname, a.location, a.intro, a.category, a.updated_at,
    CASE
        WHEN a.author_id IS NULL THEN 'null_key'
        WHEN a.rn > 1 THEN 'duplicate_author'
        WHEN :require_text = 1 AND (a.intro IS NULL OR TRIM(a.intro, :blank_chars) = '') THEN 'no_text'
        WHEN :require_image = 1 AND NOT EXISTS (
            SELECT 1 FROM author_media m
            WHERE m.author_id = a.author_id AND m.frame_uri IS NOT NULL AND m.frame_uri <> ''
              AND m.ts < :end_ms
        ) THEN 'no_image'
    END AS reason
FROM ({% include "ingest/_author_profiles.sql" %}) a
