-- The serving champion steps down when a new version is promoted (same transaction).
UPDATE model_registry
SET status = 'retired', reason = :reason, decided_at = :decided_at
WHERE status = 'champion' AND version <> :version;
