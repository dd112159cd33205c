# Every target does its own set-up on a fresh Debian machine: venv, CPU torch, the project, the dataset.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
FMNIST := /usr/share/datasets/fashion-mnist
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup data test demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The pinned CPU wheel first: an unpinned torch would pull GBs of CUDA packages.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) data

data:
	@if [ ! -f $(FMNIST)/train-images-idx3-ubyte.gz ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -q dataset-fashion-mnist || (apt-get update -q && apt-get install -y -q dataset-fashion-mnist)) >/dev/null; \
	  else echo "note: $(FMNIST) missing and not root; set RECGEN_DATA or use --data-dir"; fi; \
	fi

test: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile -q tests

demo: setup
	$(BIN)/recgen demo

# Long runs (about 2 hours on 2 cores): each step prints its figures and rewrites its section of docs/BENCHMARKS.md.
# Generation at half the families' default epochs (about 10 minutes each; the defaults are sized for ~20).
GEN_EPOCHS ?= gan=2,vae=5,pixelcnn=1,diffusion=1
bench: setup
	$(BIN)/python -m pytest -q -m slow tests
	$(BIN)/recgen bench classical cnn
	$(BIN)/python bench/detect.py --out runs/bench
	$(BIN)/python bench/restore.py --out runs/bench-restore
	test -f runs/judges/fashion-mnist/config.yaml || $(BIN)/recgen generate judge --data fashion-mnist
	$(BIN)/python bench/generate.py --epochs $(GEN_EPOCHS) --judge runs/judges/fashion-mnist --eval-n 5000
	$(BIN)/python bench/generate.py --families vae --text --epochs vae=5 --judge runs/judges/fashion-mnist
	$(BIN)/recgen bench demo

clean:
	rm -rf $(VENV) runs .pytest_cache
