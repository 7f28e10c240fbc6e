# Two entry points for a fresh Debian/Ubuntu machine with Python 3.11+ (see README):
#   make run   installs the app and starts it
#   make test  installs everything the tests need and runs the whole suite (pytest, every tier)
# and, after make test (or bash scripts/setup.sh test) has installed requirements/dev.lock:
#   make lint  ruff, ruff format --check, strict mypy for the whole of pso_desktop and pso_server
#   make audit pip-audit of requirements/app.lock and dev.lock (exceptions: requirements/audit-exceptions.txt)
.PHONY: run test lint audit
run:
	bash scripts/setup.sh app
	.venv/bin/pso-desktop
test:
	bash scripts/test-all.sh
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy pso_desktop pso_server scripts/audit_deps.py
audit:
	.venv/bin/python scripts/audit_deps.py
