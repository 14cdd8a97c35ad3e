# The two commands of the README. Each sets itself up on a fresh machine.
#   make bench   install, then run the main job (quick suite + profile -> results/quick/report.html)
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

# The main job: the quick suite (training), a short profile of the same families plus GQA/MQA
# (speed, memory, scaling, decode state), then the report built from both sets of records.
BENCH_OUT ?= results/quick
PROFILE_LENS := --seq-len 256 --seq-len 512 --seq-len 1024 --seq-len 2048
PROFILE := $(BIN)/seqbench profile --out $(BENCH_OUT) --repeats 2 --decode-steps 8

bench: $(VENV)/.installed
	$(BIN)/seqbench run --suite quick --out $(BENCH_OUT)
	$(PROFILE) --arch mha --arch gqa --arch mqa --arch mamba --arch lru --arch mha-moe \
		$(PROFILE_LENS) --context 1024 --context 4096 --counted-len 4096 --counted-len 16384
	$(PROFILE) --arch mha --impl reference $(PROFILE_LENS) --mode train --mode counted \
		--counted-len 4096 --counted-len 16384
	$(PROFILE) --arch mha-moe --set ffn.n_experts=4 --set ffn.n_experts=16 \
		--seq-len 512 --mode train --mode counted --counted-len 4096
	$(BIN)/seqbench report $(BENCH_OUT)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
