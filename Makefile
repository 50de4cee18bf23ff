# Thin aliases over scripts/run.py, which is all a fresh machine needs (Python 3.11+).
PYTHON ?= python3

.PHONY: setup gen lint typecheck test fuzz dev bench bench-scale bench-audit bench-mlflow bench-peer soak clean

setup:
	$(PYTHON) -c "import runpy, sys; sys.argv = ['run']; m = runpy.run_path('scripts/run.py'); m['ensure_installed']()"

gen:
	$(PYTHON) scripts/run.py gen

lint:
	$(PYTHON) scripts/run.py lint

typecheck:
	$(PYTHON) scripts/run.py typecheck

test:
	$(PYTHON) scripts/run.py test

# The fuzz suite alone, longer than in `make test` (README: Input limits).
MODELREG_FUZZ_EXAMPLES ?= 100000
fuzz:
	MODELREG_FUZZ_EXAMPLES=$(MODELREG_FUZZ_EXAMPLES) $(PYTHON) scripts/run.py test tests/fuzz

dev:
	$(PYTHON) scripts/run.py dev

bench:
	$(PYTHON) scripts/run.py bench

bench-scale:
	$(PYTHON) scripts/run.py bench --scale

# Audit export and verify rates at 100k events.
bench-audit:
	$(PYTHON) scripts/run.py bench-audit

# One MlflowClient workload against MLflow's own server (mlflow==3.17.2 in .venv-bench-mlflow,
# made on first use) and against the gateway, side by side (bench/mlflow_side_by_side.py).
bench-mlflow:
	$(PYTHON) scripts/run.py bench-mlflow

# bench.run's workload (200 models x 20 versions) through MlflowClient against MLflow's own
# server, then against modelreg over gRPC: one table with the ratio per workload (bench/peer.py).
bench-peer:
	$(PYTHON) scripts/run.py bench-peer

soak:
	$(PYTHON) scripts/run.py soak

clean:
	rm -rf .venv .pytest_cache .hypothesis .ruff_cache

# Accept the current protos as the compatibility baseline (on a release).
api-baseline:
	.venv/bin/buf build -o protos/api-baseline.binpb

# Re-pin constraints.txt to what is installed in .venv now.
lock:
	.venv/bin/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt
