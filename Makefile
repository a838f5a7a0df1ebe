# The README's two commands: `make run` (embedded: SQLite, local worker, offline provider, demo
# data) and `make test` (the whole suite). Both install into .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint bench-resolve bench-audit-export bench-eval-throughput bench-load clean

# The server, promptledger-server, editable; it carries the SDK's package from sdk/promptledger. The
# distribution this repository was called before (promptledger) goes first: its editable finder points
# at a folder that moved, and removing it later would take the shared `promptledger` script with it.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip uninstall --quiet --yes promptledger
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/python manage.py run_embedded --host $(HOST) --port $(PORT)

# The SSO tests' OpenID provider (node's oidc-provider, pinned in tests/oidc/package-lock.json); without
# npm they skip, naming what is missing (and fail under REQUIRE_SERVICES=1).
tests/oidc/node_modules/.package-lock.json: tests/oidc/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tests/oidc --ignore-scripts --no-audit --no-fund; \
	else echo "npm not found: the SSO tests will skip"; fi

test: install tests/oidc/node_modules/.package-lock.json
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run

bench-resolve: install
	$(BIN)/python bench/resolve.py

bench-audit-export: install
	$(BIN)/python bench/audit_export.py

bench-eval-throughput: install
	$(BIN)/python bench/eval_throughput.py

bench-load: install
	$(BIN)/python bench/load.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
