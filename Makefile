# One command runs the main job and one runs the tests; each sets up what it
# needs: a virtual environment in .venv with the pinned torch, and the C++
# extension built in place (ninja, incremental) under build/.
PYTHON ?= python3
TORCH_VERSION := 2.13.0
VENV := .venv
VPY := $(VENV)/bin/python
SOURCES := $(shell find csrc -name '*.cpp' -o -name '*.h') setup.py

.PHONY: all run check test build clean cpp-test plot sanitize

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

# The test suite against an AddressSanitizer + UndefinedBehaviorSanitizer
# build of the extension, made in $(SAN_DIR) (the in-place build is left
# alone) and imported from there. CPython is not built with ASan: its runtime
# is preloaded, with libstdc++ (else ASan cannot find the real __cxa_throw
# and aborts on the first C++ exception), and leak detection is off (it would
# report CPython's own allocations). Undefined behaviour aborts. The RSS leak test is left out:
# ASan's quarantine holds freed memory on purpose, so RSS grows there.
SAN_DIR := build/sanitize
SAN_TESTS ?= tests
SAN_PYTEST_ARGS ?= -k "not memory_growth"
sanitize: $(VENV)/.installed
	TORCH_ACTIVATIONS_SANITIZE=1 $(VPY) setup.py --quiet build_ext --build-lib $(SAN_DIR)/lib --build-temp $(SAN_DIR)/temp
	cp torch_activations/*.py $(SAN_DIR)/lib/torch_activations/
	cd $(SAN_DIR)/lib && \
	export LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libstdc++.so)" \
	       ASAN_OPTIONS=detect_leaks=0 \
	       UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 && \
	$(abspath $(VPY)) -c "import torch_activations as t; assert '$(SAN_DIR)' in t._C.__file__, t._C.__file__" && \
	$(abspath $(VPY)) -m pytest -q -p no:cacheprovider $(SAN_PYTEST_ARGS) $(abspath $(SAN_TESTS))

clean:
	rm -rf build torch_activations/_C*.so torch_activations/.built

# The benchmark suite: speed against PyTorch eager, torch.compile and a memory
# copy, peak memory; writes BENCHMARKS.md and benchmarks/benchmarks.png. The
# full run takes about 9 minutes on 2 cores (longer while Inductor's on-disk
# cache is cold); BENCH_ARGS passes options
# (e.g. BENCH_ARGS="--quick").
.PHONY: bench
BENCH_ARGS ?=
bench: build
	$(VPY) -m torch_activations bench $(BENCH_ARGS)
