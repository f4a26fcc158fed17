#!/usr/bin/env bash
# Installs the Debian packages the tests call when they are missing: Sqitch and its Pg
# driver, pg_prove and pgTAP (its SQL install script also serves servers without the
# extension, e.g. the embedded PostgreSQL 18), the PostgreSQL client, openssl, PgBouncer, and
# promtool (Debian's prometheus package) for the alerting rules in ops/.
# A PostgreSQL server is not needed: without DATABASE_URL the tests start a throwaway one.
# Needs root (or sudo); says what to install otherwise.
set -euo pipefail
pg_major=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -n 1)
pg_major=${pg_major:-15}

missing=()
need() {  # need PACKAGE CHECK...: PACKAGE is missing when the check fails
    local package=$1
    shift
    "$@" >/dev/null 2>&1 || missing+=("$package")
}
need sqitch command -v sqitch
need libdbd-pg-perl perl -MDBD::Pg -e 1
need libtap-parser-sourcehandler-pgtap-perl command -v pg_prove
need "postgresql-${pg_major}-pgtap" bash -c 'ls /usr/share/postgresql/*/extension/pgtap--*.sql'
need postgresql-client command -v psql
need openssl command -v openssl
need pgbouncer bash -c 'command -v pgbouncer || test -x /usr/sbin/pgbouncer'
need prometheus command -v promtool  # promtool checks and unit-tests ops/prometheus-rules.yml
[ "${#missing[@]}" = 0 ] && exit 0

if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
    echo "missing system packages: install them with: apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
