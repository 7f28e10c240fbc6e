# Sourced by test-all.sh: starts the machine's PostgreSQL cluster and sets PSO_TEST_POSTGRES_URL to a fresh
# database for the server tests. Needs root (Debian's pg_* wrappers).
set -e
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
pg_lsclusters -h | grep -q "^$ver main" || pg_createcluster "$ver" main >/dev/null
pg_ctlcluster "$ver" main start 2>/dev/null || pg_ctlcluster "$ver" main status >/dev/null
for _ in $(seq 30); do su postgres -c "pg_isready -q" && break; sleep 1; done
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='pso_test'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"CREATE ROLE pso_test LOGIN PASSWORD 'pso_test'\""
su postgres -c "dropdb --if-exists -q pso_test && createdb -q -O pso_test pso_test"
PSO_TEST_POSTGRES_URL="postgresql://pso_test:pso_test@127.0.0.1:5432/pso_test"
set +e
