-- Register (or re-register on a retried run) one model version; values bound, never formatted.
DELETE FROM model_registry WHERE version = :version;
INSERT INTO model_registry (version, ds, base_version, artifact_uri, model_ref, status, reason,
                            metrics, created_at, decided_at)
VALUES (:version, :ds, :base_version, :artifact_uri, :model_ref, :status, :reason, :metrics,
        :created_at, :decided_at);
