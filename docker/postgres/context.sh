#!/usr/bin/env bash
# Assembles in DIR (the only argument) the build context of
# docker/postgres/Dockerfile from the host's Debian postgresql, since no
# image can be pulled here and a debootstrapped Debian base takes minutes:
#
#   DIR/rootfs  the postgres binary, the shared libraries it and its modules
#               load (as ldd resolves them here), its share directory, the
#               time zones and an /etc/passwd naming user 65532
#   DIR/state/data  a cluster made here by initdb: password (SCRAM) auth for the
#               role "postgres" ($ORDO_PG_PASSWORD, default "ordo-test"),
#               accepted only from private addresses (the Docker networks)
#
# It takes seconds. Installs Debian's postgresql when initdb cannot be found
# (as .ci/postgres.sh does), unless ORDO_PG_INSTALL=no (then status 3).
set -euo pipefail
out=${1:?usage: docker/postgres/context.sh DIR}
password=${ORDO_PG_PASSWORD:-ordo-test}
log() { echo "postgres/context.sh: $*" >&2; }

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true; }
bin=$(bindir)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
	if [ "${ORDO_PG_INSTALL:-yes}" = no ]; then
		log "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb) and ORDO_PG_INSTALL=no"
		exit 3
	fi
	log "installing Debian's postgresql"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq postgresql >&2
	bin=$(bindir)
fi
pglib=$(dirname "$bin")/lib
share=/usr/share/postgresql/$(basename "$(dirname "$bin")")

root=$out/rootfs
mkdir -p "$root/etc" "$root/usr/local/bin"

# copy puts host files at the same path under rootfs, symlinks resolved.
copy() {
	local f
	for f in "$@"; do
		mkdir -p "$root$(dirname "$f")"
		cp -L "$f" "$root$f"
	done
}

# The server and every module it may load, without the JIT (jit=off below),
# and every library they link, where the dynamic loader finds it here.
modules=$(find "$pglib" -maxdepth 1 -name '*.so' ! -name 'llvmjit*')
copy "$bin/postgres" $modules
libs=$(ldd "$bin/postgres" $modules 2>/dev/null |
	awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $2 ~ /^\(/ { print $1 }' | sort -u)
copy $libs
mkdir -p "$root$(dirname "$share")"
cp -rL "$share" "$root$share"
cp -rL /usr/share/zoneinfo "$root/usr/share/zoneinfo"
# postgres finds its share directory relative to its real path, which it
# resolves through this link.
ln -s "$bin/postgres" "$root/usr/local/bin/postgres"
echo 'postgres:x:65532:65532:PostgreSQL:/var/lib/postgresql:/nonexistent' >"$root/etc/passwd"
echo 'postgres:x:65532:' >"$root/etc/group"

# initdb refuses to run as root: root hands the directory to "postgres".
as_owner() {
	if [ "$(id -u)" -ne 0 ]; then
		"$@"
	else
		runuser -u postgres -- "$@"
	fi
}
# Under state/, so that COPY keeps the data directory's mode (postgres
# refuses a directory others can read); COPY makes its destination 0755.
data=$out/state/data
mkdir -p "$data"
chmod 755 "$out" "$out/state" # initdb, as "postgres", reaches the directory
chmod 700 "$data"
pwfile=$(mktemp)
trap 'rm -f "$pwfile"' EXIT
echo "$password" >"$pwfile"
if [ "$(id -u)" -eq 0 ]; then
	chown postgres: "$data" "$pwfile"
fi
TZ=UTC as_owner "$bin/initdb" -D "$data" -U postgres --pwfile="$pwfile" --auth=scram-sha-256 \
	-E UTF8 --no-locale --no-instructions >/dev/null
cat >"$data/pg_hba.conf" <<HBA
# Password auth from private addresses only: the Docker networks, and the
# published port's proxy on the Docker gateway.
host all all 10.0.0.0/8 scram-sha-256
host all all 172.16.0.0/12 scram-sha-256
host all all 192.168.0.0/16 scram-sha-256
HBA
# No Unix socket (nothing local connects); the tests' data is thrown away
# with the container, so no fsync.
cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '*'
unix_socket_directories = ''
max_connections = 200
jit = off
fsync = off
timezone = 'UTC'
log_timezone = 'UTC'
CONF
log "context in $out from $bin"
