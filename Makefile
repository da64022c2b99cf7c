# The README's two commands: `make repro` (set up, run the pipeline) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# DVC runs each stage as `python -m stages.<name>`: that python must be the venv's.
export PATH := $(BIN):$(PATH)
# Machines without internet: a folder (or URL) holding the four MNIST .gz files.
# This team's machines keep one in ../shared/mnist, used when present and nothing is set.
MNIST_MIRROR ?= $(wildcard $(abspath ../shared/mnist))
export MNIST_MIRROR
# Optional: a local PyTorch CPU wheel enables the tests that compare nnlib with torch.
TORCH_WHEELS ?= /opt/wheels

# The page template `dvc plots show` uses (.dvc/config): Vega inlined, so plots draw offline.
PLOTS_PAGE := .dvc/plots/offline.html
# `make s3-server`: a local S3 endpoint to try the team workflow on (README: Working as a team).
S3_PORT ?= 5555
# `make search`: workers on this machine and the trials of the study in all (docs/searching.md).
SEARCH_WORKERS ?= 2
SEARCH_TRIALS ?= 20

.PHONY: setup repro test bench bench-predict bench-schedules sweep-timing search s3-server clean

setup: $(VENV)/.installed $(PLOTS_PAGE)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --editable '.[dev,s3,search]'
	@# Only from a local wheel: from the index, torch would bring gigabytes of CUDA libraries.
	@if ls $(TORCH_WHEELS)/torch-2.13.0*.whl >/dev/null 2>&1; then \
		$(BIN)/python -m pip install --quiet $(TORCH_WHEELS)/torch-2.13.0*.whl \
		|| echo "note: the torch wheel does not fit this Python; the PyTorch cross-checks will skip"; \
	else \
		echo "note: no torch wheel in $(TORCH_WHEELS); the PyTorch cross-checks will skip"; \
	fi
	touch $@

$(PLOTS_PAGE): .dvc/plots/offline.html.in tools/offline_plots.py $(VENV)/.installed
	$(BIN)/python tools/offline_plots.py --output $@

repro: setup
	dvc repro
	dvc metrics show

test: setup
	ruff check .
	ruff format --check .
	python -m pytest

# Steady-state seconds per epoch of nnlib, scikit-learn, PyTorch and the floor (a few minutes).
bench: setup
	python bench/bench_speed.py

# How well models/model.npz reads users' files: MNIST test digits redrawn as scans, photos and
# PNGs, and font digits in five stroke widths (about 2 minutes; run `make repro` first).
bench-predict: setup
	python bench/predict_looks.py

# Test accuracy of the learning-rate schedules over 5 seeds, as the train stage trains.
bench-schedules: setup
	python bench/lr_schedules.py

# Wall time of 4 queued default-length experiments with -j 1 and -j 2, in a scratch clone.
sweep-timing: setup
	python bench/sweep_timing.py

# An Optuna study over search.yaml whose trials are DVC experiments, each worker in its own
# clone under .search/; run it again to continue the study of this commit (docs/searching.md).
search: setup
	python tools/search.py start --workers $(SEARCH_WORKERS) --trials $(SEARCH_TRIALS)

s3-server: setup
	python tools/local_s3.py --port $(S3_PORT)

clean:
	rm -rf $(VENV) $(PLOTS_PAGE) dvc_plots .pytest_cache .ruff_cache
