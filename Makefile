# The two commands of the README are `make demo` and `make test`; both set up first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup system-packages kafka-jars axe-core demo test bench stress lint stack-up stack-down clean

setup: system-packages $(INSTALLED) kafka-jars axe-core

# axe-core, the accessibility checker the browser tests inject into the pages
# (tests/integration/publishers/test_accessibility.py), from the npm registry; pinned.
AXE_VERSION := 4.14.1
AXE := $(VENV)/node/node_modules/axe-core/axe.min.js
axe-core: $(AXE)
$(AXE): Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	npm install --silent --no-audit --no-fund --save-exact --prefix $(VENV)/node axe-core@$(AXE_VERSION)
	@touch $@

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

# The demo's Ctrl-C tests, STRESS_RUNS times in a row, stopping at the first failure: they
# race the demo's own steps (a Ctrl-C while Kafka is frozen), and a race that slips through
# once in a while costs every later session. Not part of `make test`: it takes 20 minutes.
STRESS_RUNS ?= 20
stress: setup
	@for i in $$(seq $(STRESS_RUNS)); do \
		echo "stress: run $$i of $(STRESS_RUNS)"; \
		$(BIN)/pytest -q tests/integration/demo/test_demo.py -k ctrl_c \
			|| { echo "stress: run $$i of $(STRESS_RUNS) failed"; exit 1; }; \
	done; echo "stress: $(STRESS_RUNS) of $(STRESS_RUNS) runs passed"

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

stack-up: setup
	$(BIN)/chatchannels stack up

stack-down:
	$(BIN)/chatchannels stack down

clean: stack-down
	rm -rf $(VENV) .stack site
