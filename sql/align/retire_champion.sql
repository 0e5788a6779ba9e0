-- {{ table }}: model_registry or encoder_registry, chosen by the code, never by input.
-- The serving champion steps down when a new version is promoted (same transaction).
UPDATE {{ table }}
SET status = 'retired', reason = :reason, decided_at = :decided_at
WHERE status = 'champion' AND version <> :version;
