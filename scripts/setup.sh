#!/usr/bin/env bash
# Installs what PSO Desktop needs on a Debian/Ubuntu machine with Python 3.11+.
#   scripts/setup.sh app    system libraries for Qt, a virtualenv in .venv, the app with its training mode
#                           (requirements/app.lock: the client and its `training` extra, the practice server)
#   scripts/setup.sh test   the above plus PostgreSQL, gnome-keyring/dbus and the test tools (requirements/dev.lock)
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-app}

qt_libs=(libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libglib2.0-0 libdbus-1-3
         libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-randr0 libxcb-render-util0
         libxcb-image0 libxcb-xinerama0 libxcb-xkb1 libx11-xcb1)
test_pkgs=(postgresql gnome-keyring dbus dbus-x11 libsecret-tools strace xvfb xauth xclip poppler-utils)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "setup: need root (or sudo) to install: $*" >&2; return 1; fi; }

pkgs=("${qt_libs[@]}")
[ "$what" = test ] && pkgs+=("${test_pkgs[@]}")
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

py=${PYTHON:-python3}
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "setup: Python 3.11+ is required" >&2; exit 1; }
[ -x .venv/bin/python ] || "$py" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# Two steps: every dependency exactly as locked, each file checked against its hash (requirements/*.lock, see
# README), then the app itself without dependencies (pip refuses an editable install beside hashes). The test
# lock holds the app lock's versions plus the tools, so CI tests exactly what ships.
if [ "$what" = test ]; then lock=requirements/dev.lock; else lock=requirements/app.lock; fi
.venv/bin/python -m pip install -q --require-hashes -r "$lock"
.venv/bin/python -m pip install -q --no-deps -e .
# --no-deps skips the app's own requirements: say so now if the lock no longer covers them.
if ! problems=$(.venv/bin/python -m pip check 2>&1); then
  echo "$problems" >&2
  echo "setup: $lock does not cover pyproject.toml; regenerate the locks (README, 'Pinned dependencies')" >&2
  exit 1
fi
# pip check sees only the core requirements; training mode (--demo) needs the `training` extra too.
if ! .venv/bin/python -c 'from pso_desktop.services.training import training_available as ok; raise SystemExit(not ok())'; then
  echo "setup: $lock lacks the training extra (--demo); regenerate the locks (README, 'Pinned dependencies')" >&2
  exit 1
fi
echo "setup: ready ($what)"
