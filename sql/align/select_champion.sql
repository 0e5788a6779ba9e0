-- {{ table }}: model_registry or encoder_registry, chosen by the code, never by input.
SELECT version, ds, base_version, artifact_uri, model_ref, status, reason, metrics,
       created_at, decided_at
FROM {{ table }}
WHERE status = 'champion'
ORDER BY decided_at DESC
LIMIT 1;
