{#- Every row of `authors` with its rejection reason (NULL = kept). Included, not run alone. -#}
SELECT
    a.author_id, a.nickname, a.location, a.intro, a.category, a.updated_at,
    CASE
        WHEN a.author_id IS NULL THEN 'null_key'
        WHEN a.rn > 1 THEN 'duplicate_author'
        WHEN a.intro IS NULL OR TRIM(a.intro) = '' THEN 'no_text'
        WHEN NOT EXISTS (
            SELECT 1 FROM author_media m
            WHERE m.author_id = a.author_id AND m.frame_uri IS NOT NULL AND m.frame_uri <> ''
        ) THEN 'no_image'
    END AS reason
FROM (
    SELECT au.*, ROW_NUMBER() OVER (
        PARTITION BY au.author_id
        ORDER BY au.updated_at DESC, au.nickname, au.intro, au.location, au.category
    ) AS rn
    FROM authors au
) a
