# The two commands of the README: `make book` and `make test`. Each sets up what it needs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# cpu (default, what the stored notebook outputs were computed on) or cuda.
DEVICE ?= cpu
CACHE := _build/.jupyter_cache
LIBRARY_STAMP := _build/.vae_lib-stamp
STORED_CONFIG := _build/_config.stored-outputs.yml

export VAE_DEVICE := $(DEVICE)
# A non-interactive matplotlib backend in the environment would reach the notebook kernels and drop every figure.
unexport MPLBACKEND
export TQDM_DISABLE := 1
export PYTHONHASHSEED := 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# Deterministic cuBLAS, for `make test DEVICE=cuda`.
export CUBLAS_WORKSPACE_CONFIG := :4096:8

# Printed floats compare within a tolerance (tests/nbval_tolerance.py, loaded by pyproject.toml); integers and
# text exactly.
NBVAL_FLAGS := --nbval-lax --nbval-current-env --nbval-cell-timeout=600
ifeq ($(DEVICE),cuda)
# GPU arithmetic, and the random numbers drawn on the GPU, differ from the CPU's: a wider tolerance.
NBVAL_FLAGS += --nbval-gpu
endif
# test-portable and test-seeds: SETTING=<name> runs one setting of the matrix (CI runs one per job).
MATRIX_FLAGS := $(if $(SETTING),--setting $(SETTING))

.PHONY: help install book book-stored browser lint test test-portable test-seeds notebooks colab-cells binder-check bench clean

help:
	@echo "make book           build the book into _build/html, executing every notebook (cached)"
	@echo "make test           unit tests, nbval over every notebook, and a book build from stored outputs"
	@echo "make test-portable  nbval over every notebook under each CPU setting that changes float sums (kernels, threads, BLAS)"
	@echo "make test-seeds     every notebook's asserts with VAE_SEED=1 and VAE_SEED=2 (outputs not compared)"
	@echo "make notebooks      execute each notebooks/*.md into its .ipynb (refreshes stored outputs; NOTEBOOK=path for one)"
	@echo "make colab-cells    write every chapter's Colab install cell from _config.yml's repository (make notebooks does it first)"
	@echo "make binder-check   resolve binder/requirements.txt against PyPI and PyTorch's CPU index (needs the network)"
	@echo "make lint           ruff, jupytext pairing, stored outputs, actionlint (the hooks of .pre-commit-config.yaml)"
	@echo "make bench          run every benchmarks/bench_*.py in turn (one JSON object per line per figure)"
	@echo "make clean          remove _build"
	@echo "Options: DEVICE=cuda runs the notebooks on a GPU (wider tolerance); SETTING=<name> runs one setting"
	@echo "         of test-portable (native isa-default isa-avx2 threads-1 threads-2 blas-compatible)"
	@echo "         or of test-seeds (seed-1 seed-2)."

install: $(INSTALLED)

# A first install puts about 6.3 GiB into .venv (PyTorch's x86_64 wheel carries the CUDA libraries); a full disk
# would otherwise stop pip halfway with an OSError.
MIN_FREE_GIB_FOR_VENV := 7

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) scripts/check_free_space.py . $(MIN_FREE_GIB_FOR_VENV) \
		"a new .venv (PyTorch with its CUDA libraries and the book's tools)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	touch $@

# jupyter-cache keys on the cells' source only: a change in vae_lib must throw the cache away.
$(LIBRARY_STAMP): $(wildcard vae_lib/*.py) pyproject.toml
	rm -rf $(CACHE)
	mkdir -p _build
	touch $@

book: $(INSTALLED) $(LIBRARY_STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going

# The same book, rendered from the outputs stored in the notebooks (no execution): catches a broken
# page, reference or citation without running every notebook a second time. Jupyter Book finds the
# folders of `local_extensions` from the configuration file's folder (here _build/): they are made absolute.
book-stored: $(INSTALLED)
	rm -rf _build/html  # from scratch: a stale page of an earlier build would be checked (and served) too
	mkdir -p _build
	# The copy lives in _build/, and Jupyter Book finds local_extensions relative to the config file.
	sed -e 's/^\(  execute_notebooks:\).*/\1 "off"/' -e 's|^\(    [A-Za-z_]*: \)\(book/_ext\)|\1$(CURDIR)/\2|' _config.yml > $(STORED_CONFIG)
	grep -q 'execute_notebooks: "off"' $(STORED_CONFIG)
	! grep -q '^    [A-Za-z_]*: book/_ext' $(STORED_CONFIG)
	$(BIN)/jupyter-book build . -W -n --keep-going --config $(STORED_CONFIG)

test: $(INSTALLED) lint book-stored browser
	$(BIN)/python -m pytest tests notebooks $(NBVAL_FLAGS)

# The stored outputs must hold wherever a reader runs them, not only on the machine that stored them.
test-portable: $(INSTALLED)
	$(BIN)/python scripts/nbval_matrix.py portable $(MATRIX_FLAGS) -- $(NBVAL_FLAGS)

# A claim that holds for one seed only is luck: every chapter's asserts under other seeds.
test-seeds: $(INSTALLED)
	$(BIN)/python scripts/nbval_matrix.py seeds $(MATRIX_FLAGS) -- $(NBVAL_FLAGS)

# The hooks of .pre-commit-config.yaml over every tracked file, with the environment's tools first on PATH.
lint: $(INSTALLED)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pre-commit run --all-files --show-diff-on-failure

notebooks: $(INSTALLED) colab-cells
	$(BIN)/python scripts/execute_notebooks.py $(NOTEBOOK)

# The first cell of every chapter pip-installs vae_lib in Colab from the repository named in _config.yml.
colab-cells: $(INSTALLED)
	$(BIN)/python scripts/colab_cell.py

# Opt-in, networked: the resolution mybinder.org will do for binder/ (make test checks binder/ offline).
binder-check: $(INSTALLED)
	VAE_BINDER_ONLINE=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_launch.py -k resolves_against_pypi

# Benchmarks measure; they assert nothing. Each prints one JSON object per line (see benchmarks/*.py).
bench: $(INSTALLED)
	for benchmark in benchmarks/bench_*.py; do echo "# $$benchmark"; $(BIN)/python $$benchmark; done

# tests/test_browser.py opens every page in Debian's chromium (never a downloaded browser). Install it where
# it is missing and we may: as root, or in CI with sudo. Elsewhere the test says so and skips.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then SUDO=; \
	elif [ "$${CI:-}" = true ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; \
	else echo "chromium not found and not root: tests/test_browser.py will be skipped (apt-get install chromium)"; exit 0; fi; \
	$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

clean:
	rm -rf _build
