-- An import replaces the source tables wholesale (like the demo world: it is then the
-- warehouse's only writer) and its own rejects, inside the import's one transaction.
DELETE FROM tip_events;
DELETE FROM authors;
DELETE FROM author_media;
DELETE FROM live_comments;
DELETE FROM impressions;
DELETE FROM import_rejects WHERE source = :source;
