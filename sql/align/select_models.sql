SELECT version, ds, base_version, artifact_uri, model_ref, status, reason, metrics,
       created_at, decided_at
FROM model_registry
ORDER BY created_at DESC, version DESC;
