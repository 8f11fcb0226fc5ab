#!/bin/sh
# Starts PostgreSQL for the container tests: a fresh cluster on first start
# (kept across restarts of the container), listening on every address of
# the container's private networks, trusting them (test data only).
set -eu
bin=/usr/lib/postgresql/15/bin
PGDATA=${PGDATA:-/var/lib/postgresql/data}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	"$bin/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
	echo "host all all 0.0.0.0/0 trust" >>"$PGDATA/pg_hba.conf"
fi
[ "${1:-}" = --init-only ] && exit 0
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' -c max_connections=200 "$@"
