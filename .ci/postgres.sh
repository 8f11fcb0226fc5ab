#!/usr/bin/env bash
# Starts a throwaway PostgreSQL and prints its DSN on stdout (everything
# else goes to stderr). The read-model tests' PostgreSQL pass uses it, and so
# does `go run ./cmd/ordo-bench hot-sku` for its PostgreSQL comparison:
#
#   export ORDO_TEST_POSTGRES_DSN=$(.ci/postgres.sh)
#   go test ./projections/ ./tests/
#   .ci/postgres.sh stop
#
# Installs Debian's postgresql when initdb cannot be found, creates a cluster
# in a fresh directory under /tmp, trusts every connection on loopback, and
# listens on 127.0.0.1 only, port $ORDO_PG_PORT (default 55432), with
# max_connections $ORDO_PG_MAX_CONNECTIONS (default 200). If a server already
# answers there, it is reused. With ORDO_PG_INSTALL=no it installs nothing
# and exits with status 3 when PostgreSQL is missing. The tests create (and
# drop) one database per test, so the DSN's role needs CREATEDB; here it is
# the superuser "postgres".
set -euo pipefail

port=${ORDO_PG_PORT:-55432}
max_connections=${ORDO_PG_MAX_CONNECTIONS:-200}
state=/tmp/ordo-postgres-$port.dir # remembers the data directory for "stop"
dsn="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"

log() { echo "postgres.sh: $*" >&2; }

# bindir finds initdb and pg_ctl: on PATH (e.g. /usr/local/bin), or in the
# newest /usr/lib/postgresql/<version>/bin.
bindir() {
	local initdb
	if initdb=$(command -v initdb) && [ -x "$(dirname "$(readlink -f "$initdb")")/pg_ctl" ]; then
		dirname "$(readlink -f "$initdb")"
		return
	fi
	# No match is not an error: the caller installs PostgreSQL then.
	ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true
}

# as_owner runs a command as the cluster's owner: initdb and postgres refuse
# to run as root, so root hands over to the "postgres" user.
as_owner() {
	if [ "$(id -u)" -ne 0 ]; then
		"$@"
	elif command -v runuser >/dev/null; then
		runuser -u postgres -- "$@"
	else
		su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
	fi
}

bin=$(bindir)
if [ "${1:-}" = stop ]; then
	if [ -f "$state" ]; then
		dir=$(cat "$state")
		as_owner "$bin/pg_ctl" -D "$dir" -m fast -w stop >&2 || true
		rm -rf "$dir" "$state"
	fi
	exit 0
fi

if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
	if [ "${ORDO_PG_INSTALL:-yes}" = no ]; then
		log "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin) and ORDO_PG_INSTALL=no"
		exit 3
	fi
	log "installing Debian's postgresql"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq postgresql >&2
	bin=$(bindir)
fi

if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
	log "reusing the server already listening on 127.0.0.1:$port"
	echo "$dsn"
	exit 0
fi

dir=$(mktemp -d /tmp/ordo-postgres.XXXXXX)
if [ "$(id -u)" -eq 0 ]; then
	chown postgres: "$dir"
fi
as_owner "$bin/initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >&2
echo "$dir" >"$state"
as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
	-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=$max_connections" start >&2 || {
	cat "$dir/server.log" >&2
	exit 1
}
log "PostgreSQL listening on 127.0.0.1:$port, data in $dir"
echo "$dsn"
