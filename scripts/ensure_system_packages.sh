#!/usr/bin/env bash
# Installs the Debian packages the tests call (Sqitch, pg_prove, pgTAP) when they are
# missing. Needs root (or sudo); says what to install otherwise.
set -euo pipefail
pg_major=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -n 1)
pg_major=${pg_major:-15}
packages=(sqitch libdbd-pg-perl "postgresql-${pg_major}-pgtap" libtap-parser-sourcehandler-pgtap-perl postgresql-client openssl)

missing=0
command -v sqitch >/dev/null || missing=1
command -v pg_prove >/dev/null || missing=1
command -v psql >/dev/null || missing=1
command -v openssl >/dev/null || missing=1
ls /usr/share/postgresql/*/extension/pgtap.control >/dev/null 2>&1 || missing=1
[ "$missing" = 0 ] && exit 0

if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
    echo "missing system packages: install them with: apt-get install ${packages[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${packages[@]}" >/dev/null
