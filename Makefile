# The two commands of the README. Each sets itself up on a fresh machine.
#   make bench   install, then run the main job
#   make test    install (with dev tools), then lint and run the tests
# torch is pinned to the CPU build that installs without pulling CUDA; on a GPU machine use
#   make bench TORCH_SPEC=torch   (or any CUDA build you prefer) and `pip install -e .[mamba]`.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: bench test install install-dev lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

bench: $(VENV)/.installed
	@for arch in $$($(BIN)/python -c "import architectures as a; print(' '.join(a.PRESETS.names()))"); do \
		$(BIN)/seqbench check-arch $$arch || exit 1; \
	done

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
