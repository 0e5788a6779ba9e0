-- Candidate events of the window [:start_ms, :end_ms), each with its rejection reason
-- (NULL = valid). Candidates: events timed inside the window, plus rows that landed inside
-- the window with an event time at or after its end, before :earliest_ms (a time in the
-- wrong unit: seconds, or negative), or none at all; and rows whose landing time itself is in
-- seconds (a loader that wrote seconds in both columns), judged by the day they landed read
-- in seconds (:start_s, :end_s). So every row that lands in some day's window is judged by
-- that day: kept, filtered or quarantined, never lost.
-- The rules and their order are documented in sql/README.md. The last rule,
-- duplicate_event, is applied to these rows by mspa_tasks.ingest.mark_duplicates (a sort in
-- memory; SQLite's ROW_NUMBER over the window cost more than the whole plain SELECT).
{%- set ints = ["event_id", "user_id", "author_id", "live_id", "ts", "ingested_at"] %}
SELECT
{%- if dialect == "sqlite" %}
    -- SQLite keeps whatever a loader wrote (text in a number column); PostgreSQL refuses it
    -- at load. Such a value is read as NULL and its row quarantined as bad_type.
    e.load_seq,
    {%- for c in ints %}
    CASE WHEN typeof(e.{{ c }}) = 'integer' THEN e.{{ c }} END AS {{ c }},
    {%- endfor %}
    CASE WHEN typeof(e.amount) IN ('integer', 'real') THEN e.amount END AS amount,
{%- else %}
    e.load_seq, e.event_id, e.user_id, e.author_id, e.live_id, e.ts, e.amount, e.ingested_at,
{%- endif %}
    CASE
{%- if dialect == "sqlite" %}
        WHEN {% for c in ints %}typeof(e.{{ c }}) NOT IN ('integer', 'null') OR {% endfor -%}
             typeof(e.amount) NOT IN ('integer', 'real', 'null') THEN 'bad_type'
{%- endif %}
        WHEN e.event_id IS NULL OR e.user_id IS NULL OR e.author_id IS NULL OR e.ts IS NULL
            THEN 'null_key'
        -- NaN compares greater than every number on PostgreSQL (SQLite stores NaN as NULL),
        -- so "> :max_amount" catches NaN, Infinity and absurd values on both.
        WHEN e.amount IS NULL OR e.amount <= 0 OR e.amount > :max_amount THEN 'invalid_amount'
        WHEN e.ts < :earliest_ms THEN 'implausible_timestamp'
        WHEN e.ts > e.ingested_at + :future_tolerance_ms THEN 'future_timestamp'
        WHEN known.author_id IS NULL THEN 'unknown_author'
    END AS reason
FROM (
    SELECT * FROM tip_events WHERE ts >= :start_ms AND ts < :end_ms
    UNION ALL
    SELECT * FROM tip_events
    WHERE ingested_at >= :start_ms AND ingested_at < :end_ms
      AND (ts IS NULL OR ts >= :end_ms OR ts < :earliest_ms)
    UNION ALL
    SELECT * FROM tip_events
    WHERE ingested_at >= :start_s AND ingested_at < :end_s AND ingested_at < :earliest_ms
      AND (ts IS NULL OR ts < :earliest_ms)
) e
LEFT JOIN (SELECT DISTINCT author_id FROM authors WHERE author_id IS NOT NULL) known
    ON known.author_id = e.author_id;
