#!/bin/sh
# Runs a command (normally pytest) against a real, throwaway Secret Service: gnome-keyring-daemon inside
# its own D-Bus session, with fresh HOME and XDG folders so no existing login keyring (which would want an
# unlock prompt that cannot appear) is ever opened.
#
#   tests/security/run_secret_service_tier.sh .venv/bin/pytest tests/security -m secret_service
#
# Needs the Debian packages gnome-keyring, dbus (dbus-run-session), dbus-x11 and libsecret-tools.
set -eu

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]   e.g. $0 .venv/bin/pytest tests/security -m secret_service" >&2
    exit 2
fi
for tool in dbus-run-session gnome-keyring-daemon; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "$tool is missing: apt-get install -y gnome-keyring dbus dbus-x11 libsecret-tools" >&2
        exit 1
    }
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/pso-secret-service.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM
mkdir -m 700 "$scratch/home" "$scratch/data" "$scratch/config" "$scratch/cache" "$scratch/runtime"

export HOME="$scratch/home"
export XDG_DATA_HOME="$scratch/data"
export XDG_CONFIG_HOME="$scratch/config"
export XDG_CACHE_HOME="$scratch/cache"
export XDG_RUNTIME_DIR="$scratch/runtime"
# A throwaway password for the throwaway login keyring; the tests use it to unlock it after locking it.
PSO_TEST_KEYRING_PASSWORD="pso-test-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
export PSO_TEST_KEYRING_PASSWORD
export PSO_TEST_SECRET_SERVICE=1

status=0
# --unlock creates the login keyring with the password read from stdin and leaves it unlocked; the daemon
# ends with the D-Bus session. Its variable listing on stdout is not needed: the bus is found by name.
dbus-run-session -- sh -c '
    printf %s "$PSO_TEST_KEYRING_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    exec "$@"
' sh "$@" || status=$?
exit "$status"
