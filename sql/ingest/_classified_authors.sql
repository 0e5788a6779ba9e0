{#- Every author row known by the window's end with its rejection reason (NULL = kept); the
    profile rule is `_author_profiles.sql`. Included, not run alone. -#}
SELECT
    a.author_id, a.nickname, a.location, a.intro, a.category, a.updated_at,
    CASE
        WHEN a.author_id IS NULL THEN 'null_key'
        WHEN a.rn > 1 THEN 'duplicate_author'
        WHEN a.intro IS NULL OR TRIM(a.intro) = '' THEN 'no_text'
        WHEN NOT EXISTS (
            SELECT 1 FROM author_media m
            WHERE m.author_id = a.author_id AND m.frame_uri IS NOT NULL AND m.frame_uri <> ''
              AND m.ts < :end_ms
        ) THEN 'no_image'
    END AS reason
FROM ({% include "ingest/_author_profiles.sql" %}) a
