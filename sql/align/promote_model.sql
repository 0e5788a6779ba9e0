-- {{ table }}: model_registry or encoder_registry, chosen by the code, never by input.
-- Make an existing version the champion by hand (rollback or roll forward); the caller
-- retires the current champion in the same transaction (retire_champion.sql).
UPDATE {{ table }}
SET status = 'champion', reason = :reason, decided_at = :decided_at
WHERE version = :version;
