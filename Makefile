# The two commands of the README are `make demo` and `make test`; both set up first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup system-packages kafka-jars demo test bench lint stack-up stack-down clean

setup: system-packages $(INSTALLED) kafka-jars

system-packages:
	@bash deploy/dev/system-packages.sh

# Reinstalls only when the dependency pins change.
$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[agent,server,test]'
	@touch $@

kafka-jars: $(INSTALLED)
	@$(BIN)/chatchannels stack fetch

demo: setup
	$(BIN)/chatchannels demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest

bench: setup
	$(BIN)/python -m bench

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

stack-up: setup
	$(BIN)/chatchannels stack up

stack-down:
	$(BIN)/chatchannels stack down

clean: stack-down
	rm -rf $(VENV) .stack site
