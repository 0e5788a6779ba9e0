-- Remove everything an earlier attempt wrote for :ds.
DELETE FROM quarantine_tip_events WHERE ds = :ds;
DELETE FROM quarantine_authors WHERE ds = :ds;
DELETE FROM dropped_users WHERE ds = :ds;
DELETE FROM dq_results WHERE ds = :ds;
