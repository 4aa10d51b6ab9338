# The two set-up-and-go commands: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.medsyn-installed
# This machine's pip takes these from local disk; elsewhere pip downloads them.
TORCH ?= torch==2.14.1 torchvision==0.29.1
DEMO_DIR ?= demo-out

.PHONY: demo test test-slow test-all install clean bench

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh $(DEMO_DIR)

test: $(STAMP)
	$(PY) -m pytest -q

# Only the tests marked slow (CI runs them after `make test`; about 2-3 minutes here).
test-slow: $(STAMP)
	MEDSYN_SLOW=1 $(PY) -m pytest -q -m slow

# Everything, the slow tests too.
test-all: $(STAMP)
	MEDSYN_SLOW=1 $(PY) -m pytest -q

bench: $(STAMP)
	for b in bench/bench_*.py; do $(PY) $$b; done

clean:
	rm -rf $(DEMO_DIR) build dist *.egg-info
