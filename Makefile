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

# Two workers, one file per worker at a time (module fixtures such as the plugin installs stay on one
# worker), one thread per process: the tests are mostly short CLI subprocesses, so two of them at a time
# keep both cores busy; the slowest 15 are listed at the end to show where the time goes.
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile --durations=15

# Only the tests marked slow (CI runs them after `make test`; about 7 minutes of CPU here).
test-slow: $(STAMP)
	MEDSYN_SLOW=1 $(PY) -m pytest -q -m slow

# Everything, the slow tests too.
test-all: $(STAMP)
	MEDSYN_SLOW=1 $(PY) -m pytest -q

# The speed and memory benches with their defaults; the quality bench (bench_quality.py) is a training
# run of a chosen model, data set and budget, so it is run by hand (bench/README.md).
bench: $(STAMP)
	for b in bench/bench_*.py; do [ $$b = bench/bench_quality.py ] || $(PY) $$b || exit 1; done

clean:
	rm -rf $(DEMO_DIR) build dist *.egg-info
