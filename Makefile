# Two commands for a newcomer: `make demo` and `make test` (see README.md).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp

export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: setup demo test lint dev bench clean backfill smoke

# the install also compiles pipelines/_hmac.c (tokenization), so an edit to it re-installs
$(STAMP): pyproject.toml pipelines/_hmac.c
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version.split()[0]'
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP) $(DAGSTER_HOME)/dagster.yaml report-tools

# Optional tools for the reader-view tests (tests/test_report_visual.py skips without them)
# and a real Prometheus server (tests/test_prometheus_api.py skips without it; the tests start
# their own on 127.0.0.1, so the package's service, on :9090 of every interface, is disabled);
# installed with apt where available, never failing the build where it is not.
.PHONY: report-tools
report-tools:
	@command -v pdftoppm >/dev/null 2>&1 || (command -v apt-get >/dev/null 2>&1 && \
	  apt-get install -y -qq poppler-utils >/dev/null 2>&1) || \
	  echo "note: pdftoppm not installed; the PDF page test will skip"
	@command -v chromium >/dev/null 2>&1 || (command -v apt-get >/dev/null 2>&1 && \
	  apt-get install -y -qq chromium >/dev/null 2>&1) || \
	  echo "note: chromium not installed; the HTML screenshot test will skip"
	@(command -v fc-list >/dev/null 2>&1 && fc-list | grep -qi "color emoji") || \
	  (command -v apt-get >/dev/null 2>&1 && \
	  apt-get install -y -qq fonts-noto-color-emoji >/dev/null 2>&1) || \
	  echo "note: no emoji font; emoji in pool names print as boxes in the PDF"
	@(command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1) || \
	  (command -v apt-get >/dev/null 2>&1 && \
	  apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 && \
	  { systemctl disable --now prometheus >/dev/null 2>&1 || true; }) || \
	  echo "note: prometheus not installed; tests/test_prometheus_api.py will skip"

$(DAGSTER_HOME)/dagster.yaml:
	@mkdir -p $(DAGSTER_HOME)
	@printf 'telemetry:\n  enabled: false\nconcurrency:\n  runs:\n    max_concurrent_runs: 1\n' > $@

demo: setup
	$(BIN)/stabilis demo

lint: setup
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=10

dev: setup
	set -m; $(BIN)/dagster dev -w workspace.yaml

# make backfill PILOTS="pilot-a pilot-b" [FROM=asset]: re-materialize pilots one at a time
backfill: setup
	$(BIN)/stabilis backfill $(PILOTS) $(if $(FROM),--from $(FROM))

# dagster dev on a free port, driven through GraphQL (STABILIS_SMOKE_FULL=1: the whole job)
smoke: setup
	$(BIN)/python -m pytest tests/test_dagster_dev_smoke.py -p no:xdist

# Benchmark suite (issue #8): 1 M and 10 M attempts, every stage against the floor; writes
# benchmarks/results/bench.{json,md}. BENCH_ARGS="--huge" adds 100 M; not part of `make test`.
bench: setup
	$(BIN)/python benchmarks/bench_suite.py $(BENCH_ARGS)

clean:
	rm -rf data .dagster_home
