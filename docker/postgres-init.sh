#!/bin/sh
# The stack's warehouse: database `mspa` owned by role `mspa`, next to Airflow's metadata
# database on the same server. The password comes from POSTGRES_PASSWORD (docker/.env),
# passed to psql as a variable, never written into a file.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v pw="$POSTGRES_PASSWORD" <<'SQL'
CREATE ROLE mspa LOGIN PASSWORD :'pw';
CREATE DATABASE mspa OWNER mspa;
SQL
