# One command runs the main job and one runs the tests; each sets up what it
# needs: a virtual environment in .venv with the pinned torch, and the C++
# extension built in place (ninja, incremental) under build/.
PYTHON ?= python3
TORCH_VERSION := 2.13.0
VENV := .venv
VPY := $(VENV)/bin/python
SOURCES := $(shell find csrc -name '*.cpp' -o -name '*.h') setup.py

.PHONY: all run check test build clean cpp-test plot

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
	$(VPY) -m torch_activations demo
	$(VPY) -m torch_activations check

check: run

test: build cpp-test
	$(VPY) -m pytest -q tests

# The LibTorch C++ library (CMake, against the venv's torch) and its CTest
# test. CMake comes from the machine, or from PyPI into the venv if missing.
CMAKE := $(shell command -v cmake 2>/dev/null || echo $(VENV)/bin/cmake)
CTEST := $(dir $(CMAKE))ctest
CMAKE_BUILD := build/cmake

$(VENV)/bin/cmake: | $(VENV)/.installed
	$(VPY) -m pip install --quiet cmake==4.4.4

cpp-test: $(VENV)/.installed $(CMAKE)
	$(CMAKE) -S . -B $(CMAKE_BUILD) --log-level=WARNING -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_PREFIX_PATH="$$($(VPY) -c 'import torch; print(torch.utils.cmake_prefix_path)')"
	$(CMAKE) --build $(CMAKE_BUILD) --parallel $$(nproc)
	$(CTEST) --test-dir $(CMAKE_BUILD) --output-on-failure

plot: build
	$(VPY) -m torch_activations plot

clean:
	rm -rf build torch_activations/_C*.so torch_activations/.built
