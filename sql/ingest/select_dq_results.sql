SELECT name, value, lower, upper, passed, detail
FROM dq_results WHERE ds = :ds ORDER BY name;
