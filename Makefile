# Two commands for a newcomer: `make run` (set up, then the default recipe) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist

.PHONY: setup data run test lint bench
setup: $(STAMP) data

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Real data, offline: Debian's Fashion-MNIST package when we may install it, else TFAUX_DATA_DIR.
data:
	@if [ -d $(FASHION_MNIST) ] || [ -n "$$TFAUX_DATA_DIR" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's dataset-fashion-mnist"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			dataset-fashion-mnist >/dev/null; \
	else \
		echo "Fashion-MNIST not found: without root, set TFAUX_DATA_DIR to a folder holding"; \
		echo "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,"; \
		echo "t10k-labels-idx1-ubyte.gz (see README)"; \
	fi

run: setup
	$(PY) recipes/run.py

# Two processes: tiny-model tests are mostly single-threaded Python. Work stealing balances the
# long end-to-end tests between them (518 s vs 531 and 564 s file by file, same CPU time).
test: setup
	$(PY) -m pytest -n 2 --dist worksteal

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: setup
	$(PY) benchmarks/aux_overhead.py
