INSERT INTO dq_results (ds, name, value, lower, upper, passed, detail)
VALUES (:ds, :name, :value, :lower, :upper, :passed, :detail);
