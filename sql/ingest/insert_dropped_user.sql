INSERT INTO dropped_users (ds, user_id, reason, n_authors, n_tip_days, n_tips)
VALUES (:ds, :user_id, :reason, :n_authors, :n_tip_days, :n_tips);
