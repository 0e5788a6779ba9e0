-- {{ table }}: model_registry or encoder_registry, chosen by the code, never by input.
-- Register (or re-register on a retried run) one model version; values bound, never formatted.
DELETE FROM {{ table }} WHERE version = :version;
INSERT INTO {{ table }} (version, ds, base_version, artifact_uri, model_ref, status, reason,
                            metrics, created_at, decided_at)
VALUES (:version, :ds, :base_version, :artifact_uri, :model_ref, :status, :reason, :metrics,
        :created_at, :decided_at);
