INSERT INTO replay_metrics (ds, metric, model, kind, value, n, model_version, computed_at)
VALUES (:ds, :metric, :model, :kind, :value, :n, :model_version, :computed_at);
