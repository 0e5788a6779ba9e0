INSERT INTO quarantine_tip_events
    (ds, reason, load_seq, event_id, user_id, author_id, live_id, ts, amount, ingested_at)
VALUES
    (:ds, :reason, :load_seq, :event_id, :user_id, :author_id, :live_id, :ts, :amount,
     :ingested_at);
