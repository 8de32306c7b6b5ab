# The two set-up commands of the README: `make run` and `make test`. Both need only python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint check-i18n bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# With no HOTLINE_BOT_TOKEN (environment or .env) this starts the local sandbox instead.
run: $(STAMP)
	$(BIN)/python -m bot run --or-sandbox

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python tools/i18n_check.py check
	$(BIN)/python tools/guide_check.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks.cpu_per_update

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
