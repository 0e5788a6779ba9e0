{#- THE rule that picks an author's profile for a day, used by ingest and the composer alike:
    every row of `authors` known by the window's end (:end_ms), ranked per author newest
    first (rn = 1 is the day's profile). Ties on updated_at break on the text columns in byte
    order (COLLATE "C" on PostgreSQL, BINARY on SQLite) with NULLs first, so both dialects
    pick the same row; a row without updated_at ranks below every dated one. Rows updated at
    or after the window's end belong to later days and are not considered (a backfill of an
    old day reads the profile of that day). Included, not run alone. -#}
{%- set by = ' COLLATE "C" NULLS FIRST' if dialect == "postgresql" else ' COLLATE BINARY NULLS FIRST' %}
SELECT au.author_id, au.nickname, au.location, au.intro, au.category, au.updated_at,
    ROW_NUMBER() OVER (
        PARTITION BY au.author_id
        ORDER BY CASE WHEN au.updated_at IS NULL THEN 1 ELSE 0 END, au.updated_at DESC,
                 au.nickname{{ by }}, au.intro{{ by }}, au.location{{ by }}, au.category{{ by }}
    ) AS rn
FROM authors au
WHERE au.updated_at IS NULL OR au.updated_at < :end_ms
