#!/usr/bin/env bash
# Installs everything the tests need and runs the whole suite with pytest, in three tiers:
#   1. everything but the real-keyring and fault tiers (SQLCipher, CLI subprocesses, the TLS reference server
#      on SQLite and on PostgreSQL, Qt offscreen);
#   2. the fault tier (tests/faults, marker `faults`): the real CLI killed at chosen write calls with
#      `strace -e inject`, and full disks on a small tmpfs (needs strace, and root to mount; skips otherwise);
#   3. the real Secret Service tier: gnome-keyring-daemon under dbus-run-session, with a fresh keyring folder.
# Exits non-zero if any tier fails.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test || exit 1

export QT_QPA_PLATFORM=offscreen
export PYTHONDONTWRITEBYTECODE=1

# PostgreSQL for the server's second backend (needs root to manage the cluster; skipped tests say so otherwise).
if [ -z "${PSO_TEST_POSTGRES_URL:-}" ] && [ "$(id -u)" = 0 ] && command -v pg_lsclusters >/dev/null; then
  pg_ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
  # A cluster this script starts is stopped again at exit, so no server outlives the run.
  if ! pg_ctlcluster "$pg_ver" main status >/dev/null 2>&1; then
    trap 'pg_ctlcluster "$pg_ver" main stop >/dev/null 2>&1 || true' EXIT
  fi
  if url=$(timeout 180 bash scripts/start-postgres.sh | tail -n 1) && [[ $url == postgresql://* ]]; then
    export PSO_TEST_POSTGRES_URL=$url
  else
    echo "test-all: PostgreSQL could not be started; its server tests will be skipped" >&2
  fi
fi

status=0
.venv/bin/pytest -m "not secret_service and not faults" "$@" || status=$?
.venv/bin/pytest -m faults tests/faults "$@" || status=$?
bash tests/security/run_secret_service_tier.sh .venv/bin/pytest -m secret_service "$@" || status=$?
[ "$status" = 0 ] && echo "test-all: every tier passed" || echo "test-all: FAILED (exit $status)" >&2
exit "$status"
