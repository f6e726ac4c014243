# ddpm_nb: every target sets up .venv first if it is missing.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
PY    := $(BIN)/python
# Pinned only for installing on our own machines (pip finds these two on local disk there);
# the package itself asks for ranges so users keep their own CUDA builds.
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1

.PHONY: venv test export presets demo record-demo record-workshop record-cifar10 book pytest nbtest

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

## Clean the notebooks, then export the library from them (what to run after editing a notebook).
## Clean first: nbdev-clean gives new cells their ids, and the export records those ids.
export: venv
	$(BIN)/nbdev-clean
	$(PY) tools/strip_widgets.py nbs
	$(BIN)/nbdev-export

## Refresh the packaged copy of the run presets from settings.ini.
presets:
	cp settings.ini ddpm_nb/presets.ini

## The machine, then library and notebooks in sync and within the house-style limits, then every notebook, then
## pytest (last, so its summary closes the output).
test: venv
	$(PY) tools/machine.py
	$(PY) tools/check_sync.py
	$(PY) tools/check_style.py
	$(MAKE) nbtest
	$(MAKE) pytest

nbtest: venv
	$(BIN)/nbdev-test --n-workers 1 --timing

pytest: venv
	$(PY) -m pytest -q tests

## Train the `digits` preset on the CPU on a 5-minute budget (chapter 7: the cosine lr decays to 0 at the budget's
## end on any machine, a slow one taking fewer steps), then sample one row per class and render the diffusion GIF
## into outputs/demo/. Rerunning resumes the finished run (nothing retrained) and re-renders.
DEMO := outputs/demo
DEMO_TRAIN := --preset digits --presets settings.ini --minutes 5 --out $(DEMO)
DEMO_SET := lr_schedule=cosine
demo: venv
	$(BIN)/ddpm-nb train $(DEMO_TRAIN) $$(test -f $(DEMO)/ckpt.pt && echo --resume) $(DEMO_SET)
	$(BIN)/ddpm-nb sample --ckpt $(DEMO)/ckpt.pt --steps 100 --out $(DEMO)/samples.png
	$(BIN)/ddpm-nb gif --ckpt $(DEMO)/ckpt.pt --out $(DEMO)/diffusion.gif
	@echo "demo outputs in $(DEMO)/: samples.png (one row per digit), diffusion.gif, log.csv, card.json, ckpt.pt"

## Keep a finished demo run for the README and resources/ (everything but the checkpoint).
record-demo: demo
	mkdir -p resources/demo
	cp $(DEMO)/samples.png $(DEMO)/diffusion.gif $(DEMO)/log.csv $(DEMO)/card.json resources/demo/
	$(PY) -c "from ddpm_nb.checkpoint import write_card; write_card('resources/demo/card.json', commands=[ \
	  'ddpm-nb train $(DEMO_TRAIN) $(DEMO_SET)', \
	  'ddpm-nb sample --ckpt $(DEMO)/ckpt.pt --steps 100 --out $(DEMO)/samples.png', \
	  'ddpm-nb gif --ckpt $(DEMO)/ckpt.pt --out $(DEMO)/diffusion.gif'], renders=dict( \
	  samples='samples.png (DDIM 100 steps, guidance 0, EMA, one labelled row per class, a caption of the settings)', \
	  gif='diffusion.gif (the recipe sampler: DDIM 50, guidance 0, EMA, one image per class; x_t | x0 guess, step counter)'))"

## The CPU workshop run of chapter 9 (the preset's 8-minute budget, then held-out evaluation and renders) into
## resources/workshop/. Move the old folder away first: a folder with a checkpoint is evaluated again, not retrained.
record-workshop: venv
	$(PY) tools/record_workshop.py

## The one-hour CPU CIFAR-10 run of chapter 10 (the cifar10-cpu preset's budget, then evaluation on the test images
## and renders) into resources/cifar10-cpu/, in the background: its log goes to outputs/record-cifar10.log.
record-cifar10: venv
	mkdir -p outputs
	nohup $(PY) tools/record_cifar10.py > outputs/record-cifar10.log 2>&1 &
	@echo "recording in the background (about 70 minutes): tail -f outputs/record-cifar10.log"

## Open the book in Jupyter Lab (as root, e.g. in a container, Jupyter needs --allow-root).
book: venv
	$(BIN)/jupyter lab nbs $$( [ $$(id -u) = 0 ] && echo --allow-root )

## The workshop talk and the report (resources/*.pdf) from their Typst sources in resources/src.
## `slides`/`report` use the committed figures; `resources` remakes the figures from the library first.
.PHONY: slides report resources
slides: venv
	$(PY) resources/src/build.py slides

report: venv
	$(PY) resources/src/build.py report

resources: venv
	$(PY) resources/src/make_figures.py
	$(PY) resources/src/build.py all

## Benchmark against diffusers and denoising-diffusion-pytorch (CPU: ~10 min on an idle machine); not part of
## `make test`. Installs the peers as the `bench` extra; BENCH_ARGS passes options (e.g. --book, --rounds 8).
.PHONY: bench
bench: venv
	$(BIN)/pip install -q -e ".[bench]"
	$(PY) bench/bench.py $(BENCH_ARGS)

## The book as a website in _docs/ (Sphinx + MyST-NB, offline: MathJax 3 is installed from npm into
## build/docs-node and served from the site itself; see docs/README.md), and its check in headless Chromium
## (Debian's `chromium`; screenshots in _docs_check/). Neither is part of `make test`.
.PHONY: docs docs-check
DOCS_NODE := build/docs-node
MATHJAX   := $(DOCS_NODE)/node_modules/mathjax/es5
$(VENV)/.docs-installed: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install -q -e ".[docs]"
	touch $@

docs: venv $(VENV)/.docs-installed
	test -f $(MATHJAX)/tex-chtml.js || npm install --no-audit --no-fund --silent --prefix $(DOCS_NODE) mathjax@3.2.2
	$(PY) docs/build.py --mathjax $(MATHJAX)

docs-check: docs
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium; } \
	  || { echo "docs-check needs Debian's chromium: apt-get install -y chromium"; exit 1; }
	$(PY) docs/check.py

## The book as a learner meets it: JupyterLab in headless Chromium runs each widget chapter (01, 02, 04, 05, 05b)
## and one workshop exercise, checks no cell or widget shows an error or a widget's text stand-in, moves every
## slider and checks its figure changes, and that the exercise's solution is hidden (screenshots in
## _notebook_check/). 3.5 min on the 2-core build machine (5 min while other jobs ran); installing chromium the first
## time adds about a minute. Not part of `make test`.
.PHONY: notebook-check
notebook-check: venv
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium; } \
	  || { echo "notebook-check needs Debian's chromium: apt-get install -y chromium"; exit 1; }
	$(PY) tools/notebook_check.py
