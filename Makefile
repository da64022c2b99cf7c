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
# `make accurate`: the most accurate MLP trained here within 15 minutes on 2 cores, as the
# named experiment `accurate` (docs/accuracy.md): its settings, chosen on the validation split.
ACCURATE_SETTINGS := -S 'model.hidden_sizes=[800]' -S train.batch_size=128 \
	-S train.epochs=240 -S train.learning_rate=0.001 \
	-S train.augment.mnist.rotation=12 -S train.augment.mnist.shear=0.15 \
	-S train.augment.mnist.elastic_alpha=34
# `make accurate-cnn`: a convolutional network within 15 minutes on 2 cores, as the named
# experiment `accurate-cnn` (docs/accuracy.md): the best of the candidates on the validation
# split, the network of `make bench` (bench/bench_cnn.py) with params.yaml's distortions.
ACCURATE_CNN_LAYERS := [{type: conv2d, filters: 32, kernel: 5}, {type: maxpool2d, size: 2}, \
	{type: conv2d, filters: 64, kernel: 5}, {type: maxpool2d, size: 2}, {type: dense, units: 128}]
ACCURATE_CNN_SETTINGS := -S 'model.hidden_sizes=[]' -S 'model.layers=$(ACCURATE_CNN_LAYERS)' \
	-S train.batch_size=128 -S train.epochs=28 -S train.learning_rate=0.002
# More -S settings after a preset's, which they override: a quick try of the preset
# (SETTINGS="-S train.epochs=1") or the preset on another dataset (-S data.dataset=...).
SETTINGS ?=
# `make serve`: options for the server, e.g. SERVE_ARGS="--port 8080" (docs/serve.md).
SERVE_ARGS ?=
# `make search`: workers on this machine and the trials of the study in all (docs/searching.md).
SEARCH_WORKERS ?= 2
SEARCH_TRIALS ?= 20

.PHONY: setup repro accurate accurate-cnn test test-fast report figures bench bench-augment \
	bench-predict bench-predict-speed bench-repro bench-accurate bench-accurate-cnn bench-search \
	bench-defaults bench-own-images example-images sweep-timing search s3-server clean \
	serve serve-screenshot bench-serve bench-serve-handwriting

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

# DVC records a run in its run-cache when the stage runs; `dvc commit --force` records the
# stages it skipped as matching dvc.lock too (a fresh clone's evaluate), so that putting
# params.yaml back after another run restores every stage.
repro: setup
	dvc repro
	dvc commit --force --quiet
	dvc metrics show

# One BLAS thread: the distortion worker has the other core (docs/accuracy.md).
accurate: setup
	OPENBLAS_NUM_THREADS=1 dvc exp run --name accurate $(ACCURATE_SETTINGS) $(SETTINGS)
	dvc metrics show

accurate-cnn: setup
	OPENBLAS_NUM_THREADS=1 dvc exp run --name accurate-cnn $(ACCURATE_CNN_SETTINGS) $(SETTINGS)
	dvc metrics show

test: setup
	ruff check .
	ruff format --check .
	python -m pytest

# The inner loop (about half a minute here): everything but the tests that start dvc, a browser, a server,
# read the real MNIST or take seconds each (the markers in pyproject.toml, docs/testing.md);
# `make test` still runs everything.
test-fast: setup
	ruff check .
	python -m pytest -m "not (pipeline or realdata or browser or s3 or queue or slow)"

# The workspace's metrics, params and plots against BASE, in report/report.md with the charts
# as PNG beside it (docs/reviewing.md); run the pipeline first. CI publishes it on pull requests.
BASE ?= main
report: setup
	python tools/report.py --base "$(BASE)" --output report $(REPORT_ARGS)

# Steady-state seconds per epoch of nnlib, scikit-learn, PyTorch and the floor (a few minutes),
# then the CNN's milliseconds per step beside PyTorch's and its products' (bench/cnn.json),
# then the seed network with this commit's nnlib beside an earlier commit's (bench/speed_baseline.json).
bench: setup
	python bench/bench_speed.py
	python bench/bench_cnn.py
	python bench/speed_baseline.py

# Seconds to distort 60,000 images, and seed-net epochs without augmentation, with it from
# the background worker and with it in between, side by side (a few minutes).
bench-augment: setup
	python bench/bench_augment.py

# How well models/model.npz reads users' files: MNIST test digits redrawn as scans, photos and
# PNGs, with a margin and cropped tight, and font digits in five stroke widths (about 5
# minutes; run `make repro` first).
bench-predict: setup
	python bench/predict_looks.py

# Your own images, the worked example (docs/own-images.md): example-digits/ holds the 10,000
# MNIST test digits redrawn as users' files, one sub-folder per digit. Then:
#   dvc add example-digits
#   dvc exp run -S data.dataset=images -S data.images=example-digits -S data.val_size=0.1
example-images: setup
	python bench/own_images.py build example-digits

# The worked example measured in a scratch clone of HEAD: preprocess time, test accuracy.
bench-own-images: setup
	python bench/own_images.py measure

# Draw a digit and see what models/model.npz reads: the page on http://127.0.0.1:8000/ and
# POST /predict for programs (docs/serve.md; run `make repro` first; Ctrl-C stops it).
serve: setup
	python -m stages.serve $(SERVE_ARGS)

# docs/serve.png, the README's picture of the page: the browser test draws a digit and saves
# the page (needs chromium and the real MNIST, as the test does).
serve-screenshot: setup
	SERVE_SCREENSHOT=docs/serve.png python -m pytest tests/test_serve_browser.py -q

# The server's latency for a drawn digit (200 requests) and requests per second with 8
# clients, beside predict as a new process (bench/serve.json; under a minute).
bench-serve: setup
	python bench/serve_speed.py

# Real handwriting of 43 writers outside MNIST (scikit-learn's optdigits) posted to the
# server: agreement with predict --json and accuracy (bench/serve_handwriting.json; a minute).
bench-serve-handwriting: setup
	python bench/serve_handwriting.py

# Pictures per second and peak memory of predict on 2000 photos and 2000 small files (a few
# minutes; run `make repro` first).
bench-predict-speed: setup
	python bench/predict_speed.py

# The whole default pipeline from a fresh clone, 3 times (bench/repro.json; a few minutes).
bench-repro: setup
	python bench/repro.py

# `make accurate` from a fresh clone, timed, validation and test read (bench/accurate.json).
bench-accurate: setup
	python bench/accurate.py

# The same for `make accurate-cnn` (bench/accurate_cnn.json; about 15 minutes).
bench-accurate-cnn: setup
	python bench/accurate.py --preset cnn

# The measured search: make search from a fresh clone, timed, its best trial beside the
# defaults (bench/search.json; about 10 minutes).
bench-search: setup
	python bench/search.py

# The measured figures of README.md and docs/, rendered from bench/*.json (tools/figures.py).
figures: setup
	python tools/figures.py

# How the default params were chosen: configurations over 5 seeds as the pipeline trains,
# compared on validation, test reported beside (bench/defaults.json; 10-20 minutes).
bench-defaults: setup
	python bench/defaults.py

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
	rm -rf $(VENV) $(PLOTS_PAGE) dvc_plots report .pytest_cache .ruff_cache
