#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 with trust auth and a `test`
# database, so the SQL suite always runs on PostgreSQL too. Uses the running server when
# there is one; otherwise installs Debian's package and starts a cluster (needs root).
set -euo pipefail
HOST=127.0.0.1 PORT=5432

answers() { command -v pg_isready >/dev/null && pg_isready -q -h "$HOST" -p "$PORT"; }

if answers; then
  echo "postgres: server answering on $HOST:$PORT"
  exit 0
fi
echo "postgres: nothing answers on $HOST:$PORT; installing and starting one"
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
if [ -z "$version" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -1)
  pg_createcluster "$version" main >/dev/null
fi
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! grep -q "mspa-test trust" "$hba"; then
  # Local test server only: trust loopback connections, like the developers' machines.
  sed -i '1i host all all 127.0.0.1/32 trust # mspa-test trust\nhost all all ::1/128 trust # mspa-test trust' "$hba"
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main restart
for _ in $(seq 1 30); do answers && break; sleep 1; done
answers || { echo "postgres: server did not come up" >&2; exit 1; }
psql -h "$HOST" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 \
  || psql -h "$HOST" -U postgres -c "CREATE DATABASE test" >/dev/null
echo "postgres: started $version on $HOST:$PORT"
