# One command runs the main job and one runs the tests; each sets up what it
# needs: a virtual environment in .venv with the pinned torch, and the C++
# extension built in place (ninja, incremental) under build/.
PYTHON ?= python3
TORCH_VERSION := 2.13.0
VENV := .venv
VPY := $(VENV)/bin/python
SOURCES := $(shell find csrc -name '*.cpp' -o -name '*.h') setup.py

.PHONY: all run check test build clean

all: test

$(VENV)/.installed: requirements-dev.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet torch==$(TORCH_VERSION)
	$(VPY) -m pip install --quiet -r requirements-dev.txt
	touch $@

torch_activations/.built: $(VENV)/.installed $(SOURCES)
	$(VPY) setup.py --quiet build_ext --inplace
	touch $@

build: torch_activations/.built

# The main job.
run: build
	$(VPY) -m torch_activations check

check: run

test: build
	$(VPY) -m pytest -q tests

clean:
	rm -rf build torch_activations/_C*.so torch_activations/.built
