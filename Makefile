# Two commands do all the set-up on a fresh machine:
#   make demo   - create .venv, install, then train + index + search on the embedded store
#   make test   - create .venv, install, then run lint and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# A CPU wheel of torch 2.13.0 is what the project is built and measured with; an unpinned
# torch would pull several GB of CUDA packages.
TORCH  ?= torch==2.13.0
P15    ?= ../shared/data/p15_books.ndjson
DEMO_DATA := $(if $(wildcard $(P15)),--data $(P15),)

.PHONY: install demo test lint imports format bench clean

$(BIN)/bookvec: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[train,dev,eval,maps,serve]"
	@touch $(BIN)/bookvec

install: $(BIN)/bookvec

demo: install
	$(BIN)/bookvec quickstart $(DEMO_DATA)

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) --no-print-directory imports
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) --no-print-directory imports

# The import-linter contracts of pyproject.toml. grimp finds a package's modules by walking its
# folder, and bookvec's subpackages live in top-level folders (package-dir), so one bookvec/
# tree of links is staged first; the .py files are the working tree's own.
GRAPH := .import-graph
imports: install
	rm -rf $(GRAPH) && mkdir -p $(GRAPH)/bookvec
	ln -s $(CURDIR)/bookvec/* $(GRAPH)/bookvec/
	for dir in cli model indexer service; do \
	  if [ -d $$dir ]; then ln -s $(CURDIR)/$$dir $(GRAPH)/bookvec/$$dir; fi; \
	done
	cd $(GRAPH) && $(CURDIR)/$(BIN)/lint-imports --no-cache $(CURDIR)/pyproject.toml

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .import-graph
