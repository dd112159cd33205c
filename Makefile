# Every target does its own set-up on a fresh Debian machine: venv, CPU torch, the project, the dataset.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
FMNIST := /usr/share/datasets/fashion-mnist
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup data browser test demo bench bench-defaults clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The pinned CPU wheel first: an unpinned torch would pull GBs of CUDA packages.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) data browser

# The web UI's tests drive Debian's headless Chromium (tests/test_webui.py skips them where none can be installed).
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -q chromium chromium-driver || (apt-get update -q && \
	     apt-get install -y -q chromium chromium-driver)) >/dev/null \
	    || echo "note: chromium could not be installed; the browser tests will be skipped"; \
	  else echo "note: chromium/chromedriver missing and not root; the browser tests will be skipped"; fi; \
	fi

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

# Long runs (about 6 hours on 2 cores): each step prints its figures and writes its record to bench/results/ (or, for
# `recgen generate eval` / `recgen restore eval`, the JSON under runs/); bench/render_benchmarks.py then regenerates
# docs/BENCHMARKS.md from the records (`recgen bench NAME` runs bench/ scripts and does both). The judge of the
# restoration and generation benchmarks is the CNN recipe their records were judged by (12 epochs in fp32; each
# metric card names the judge and its weights' hash), not `recgen bench cnn`'s 20-epoch bf16 default. The first
# generation line runs at reduced budgets; the lines after `bench-defaults` measure each family and restorer at its
# default budget. One-off studies (bench/*.py run by hand) write their own records.
JUDGE := runs/bench/classify/judge-1
GEN := --epochs gan=1,vae=3,pixelcnn=1,diffusion=1 --limit pixelcnn=1500
bench: setup
	rm -rf runs/bench runs/bench-restore runs/bench-text
	$(BIN)/recgen bench classical cnn
	$(BIN)/recgen classify train --model cnn --data fashion-mnist --val-fraction 0 --epochs 12 --precision fp32 \
	  --out runs/bench --name judge
	$(BIN)/python bench/detect.py --out runs/bench
	$(BIN)/python bench/serve_soak.py --run $(JUDGE)
	$(BIN)/python bench/restore.py --out runs/bench-restore --judge $(JUDGE) --epochs 1 --limit 2000 --n 500 --seeds 0,1
	$(BIN)/python bench/generate.py $(GEN) --judge $(JUDGE) --eval-n 1000 --quick-sampling \
	  --fid-n 200 --fid-steps 20,250 --fid-samplers dpm
	$(BIN)/recgen bench demo augment
	$(BIN)/python bench/generate.py --families vae --text --epochs vae=3 --judge $(JUDGE) --out runs/bench-text
	$(MAKE) bench-defaults
	$(BIN)/python bench/render_benchmarks.py

D := runs/bench-defaults
bench-defaults: setup
	rm -rf $(D)
	$(BIN)/python bench/generate.py --speed-only --families gan,vae --no-record --out $(D)/speed
	$(BIN)/python bench/generate.py --families vae --judge $(JUDGE) --eval-n 10000 --out $(D)
	$(BIN)/python bench/generate.py --families gan --judge $(JUDGE) --eval-n 1000 --out $(D)
	$(BIN)/python bench/generate.py --families pixelcnn --judge $(JUDGE) --eval-n 1000 --out $(D)
	$(BIN)/recgen generate train --model diffusion --data fashion-mnist --class-conditional --out $(D)
	$(BIN)/python bench/generate.py --runs $(D)/generate/diffusion-1 --judge $(JUDGE) --eval-n 1000 \
	  --fid-n 200 --fid-steps 10,20,50,250 --fid-samplers dpm --out $(D)
	$(BIN)/recgen generate eval $(D)/generate/diffusion-1 --judge $(JUDGE) --n 2000 --json > $(D)/diffusion-eval-2000.json
	$(BIN)/recgen restore train --task inpaint --data fashion-mnist --out $(D) --threads 2
	$(BIN)/recgen restore eval $(D)/restore/inpaint-1 --task inpaint --n 500 --seeds 0,1 --judge $(JUDGE) \
	  --mask-kind box --ratio 0.25 --out $(D)/evals/inpaint-box-0.25 --json > $(D)/inpaint-eval.json
	$(BIN)/recgen restore train --task denoise --data fashion-mnist --out $(D) --threads 2
	$(BIN)/recgen restore eval $(D)/restore/denoise-1 --task denoise --n 500 --seeds 0,1 --judge $(JUDGE) \
	  --sigma 0.2 --out $(D)/evals/denoise-0.2 --json > $(D)/denoise-eval.json

clean:
	rm -rf $(VENV) runs .pytest_cache
