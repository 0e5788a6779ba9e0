-- The demo world replaces the source tables wholesale (it is the warehouse's only writer).
DELETE FROM tip_events;
DELETE FROM authors;
DELETE FROM author_media;
DELETE FROM live_comments;
DELETE FROM impressions;
DELETE FROM live_rooms;
