# Two entry points for a fresh Debian/Ubuntu machine with Python 3.11+ (see README):
#   make run   installs the app and starts it
#   make test  installs everything the tests need and runs the whole suite (pytest, every tier)
.PHONY: run test lint
run:
	bash scripts/setup.sh app
	.venv/bin/pso-desktop
test:
	bash scripts/test-all.sh
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy pso_desktop pso_server
