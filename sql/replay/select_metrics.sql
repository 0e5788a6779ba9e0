-- Metrics of the days in [:first_ds, :last_ds] (the report's trend and delta vs yesterday).
SELECT ds, metric, model, kind, value, n, model_version, computed_at
FROM replay_metrics
WHERE ds >= :first_ds AND ds <= :last_ds
ORDER BY ds, metric, model;
