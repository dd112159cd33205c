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
# The CNN trained by `recgen bench cnn` is the judge of the restoration and generation benchmarks. Generation runs
# at reduced budgets (the families' defaults are sized for ~20 minutes each).
JUDGE := runs/bench/classify/cnn-1
GEN := --epochs gan=1,vae=3,pixelcnn=1,diffusion=1 --limit pixelcnn=1500
bench: setup
	$(BIN)/python -m pytest -q -m slow tests
	rm -rf runs/bench runs/bench-restore
	$(BIN)/recgen bench classical cnn
	$(BIN)/python bench/detect.py --out runs/bench
	$(BIN)/python bench/restore.py --out runs/bench-restore --judge $(JUDGE) --epochs 1 --limit 2000 --n 500 --seeds 0,1
	$(BIN)/python bench/generate.py $(GEN) --judge $(JUDGE) --eval-n 1000 --quick-sampling \
	  --fid-n 200 --fid-steps 20,250 --fid-samplers dpm
	$(BIN)/recgen bench demo augment
	$(BIN)/python bench/generate.py --families vae --text --epochs vae=3 --threads 1 --judge $(JUDGE) \
	  --out runs/bench-text

clean:
	rm -rf $(VENV) runs .pytest_cache
