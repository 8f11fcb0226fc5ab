#!/usr/bin/env bash
# Makes the Debian base image with PostgreSQL 15 that docker/postgres/Dockerfile
# builds on, from Debian's packages (debootstrap + docker import), since no
# image can be pulled here. It takes a few minutes, so an existing image of
# that tag is kept: `docker/postgres/base.sh` does nothing then (--force
# rebuilds it). Needs root; installs debootstrap when missing. Prints the tag.
set -euo pipefail
tag=${ORDO_POSTGRES_BASE:-ordo-test/debian-postgres-base:bookworm}
log() { echo "postgres/base.sh: $*" >&2; }

if [ "${1:-}" != --force ] && docker image inspect "$tag" >/dev/null 2>&1; then
	echo "$tag"
	exit 0
fi
if ! command -v debootstrap >/dev/null; then
	log "installing debootstrap"
	apt-get update >&2 && apt-get install -y debootstrap >&2
fi
# The mirror apt uses here (the first URI of the Debian sources).
mirror=$(grep -h -m1 -E '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
	head -n1 | awk '{print $2}' || true)
mirror=${mirror:-http://deb.debian.org/debian}
root=$(mktemp -d /tmp/ordo-debian-root.XXXXXX)
trap 'rm -rf "$root"' EXIT
log "debootstrap bookworm with postgresql-15 from $mirror (a few minutes)"
debootstrap --variant=minbase --include=postgresql-15 bookworm "$root" "$mirror" >&2
# Nothing from the build host's apt caches or the package lists.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import - "$tag" >&2
echo "$tag"
