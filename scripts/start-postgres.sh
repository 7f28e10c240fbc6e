#!/usr/bin/env bash
# Starts this machine's PostgreSQL cluster (Debian's pg_* wrappers; needs root) with a fresh database for the
# server tests, and prints its URL on stdout. Exits non-zero if anything fails.
set -euo pipefail
# Everything but the final URL goes to stderr (pg_ctlcluster prints notes such as "Removed stale pid file.").
exec 3>&1 1>&2
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
pg_lsclusters -h | grep -q "^$ver main" || pg_createcluster "$ver" main >/dev/null
# The server daemon must inherit no descriptor but stdin/stdout/stderr: holding the caller's pipe (fd 3 here, or
# the CI runner's output) open would make the caller wait for end-of-file forever. Python closes the rest.
pg_ctlcluster "$ver" main status >/dev/null 2>&1 ||
  python3 -c 'import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:], stdin=subprocess.DEVNULL))' \
    pg_ctlcluster "$ver" main start
for _ in $(seq 30); do su postgres -c "pg_isready -q" && break; sleep 1; done
su postgres -c "pg_isready -q"
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='pso_test'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"CREATE ROLE pso_test LOGIN PASSWORD 'pso_test'\"" >&2
su postgres -c "dropdb --if-exists pso_test && createdb -O pso_test pso_test" >&2
echo >&3 "postgresql://pso_test:pso_test@127.0.0.1:5432/pso_test"
