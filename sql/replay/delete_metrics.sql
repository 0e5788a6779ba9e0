-- A rerun of a day replaces that day's rows, nothing else.
DELETE FROM replay_metrics WHERE ds = :ds;
