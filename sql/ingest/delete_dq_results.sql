DELETE FROM dq_results WHERE ds = :ds;
