# Thin wrappers around CMake presets (CMakePresets.json). `make test` is what CI runs.
SHARED  ?= $(abspath ../shared)
MODEL   ?= $(SHARED)/models/tiny-llama-gqa
JOBS    ?= $(shell nproc)
AWQ      = build/release/awq

# CUDA: on when nvcc is found (on PATH, else /usr/local/cuda/bin/nvcc), so CI compiles the CUDA
# code; `make AWQ_CUDA=OFF` builds without it. The ASan build never compiles CUDA (CMakePresets.json).
NVCC     ?= $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
AWQ_CUDA ?= $(if $(NVCC),ON,OFF)
CUDA_CMAKE_FLAGS = -DAWQ_CUDA=$(AWQ_CUDA) $(if $(filter ON,$(AWQ_CUDA)),-DCMAKE_CUDA_COMPILER=$(NVCC))

.PHONY: all deps build build-asan test test-release test-asan demo bench check-full clean

all: build

deps:
	bash scripts/install-deps

build: deps
	cmake --preset release $(CUDA_CMAKE_FLAGS) >/dev/null
	cmake --build --preset release -j $(JOBS)

build-asan: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)

# Every test twice: the portable release build, then the AddressSanitizer + UBSan build.
test: test-release test-asan

test-release: build
	ctest --preset release -j $(JOBS)

test-asan: build-asan
	ctest --preset asan -j $(JOBS)

DEMO_OUT ?= build/demo-awq-w4g128

demo: build
	@test -d "$(MODEL)" || { echo "demo: $(MODEL) not found (put ../shared beside the checkout)"; exit 1; }
	@echo "== inspect the FP16 model"; $(AWQ) inspect $(MODEL) --no-tensors
	@echo; echo "== quantize it with AWQ (W4, group 128) into the AutoAWQ GEMM format"
	$(AWQ) quantize $(MODEL) -o $(DEMO_OUT) --calib $(SHARED)/data/calib.txt --n-samples 32 --force
	@echo; echo "== inspect the AWQ checkpoint"; $(AWQ) inspect $(DEMO_OUT) --no-tensors
	@echo; echo "== generate with the AWQ model (greedy)"
	$(AWQ) generate $(DEMO_OUT) -p "The history of" -n 48 --temp 0
	@echo; echo "== generate with the AWQ model (temperature 0.8, top-p 0.95, seed 7)"
	$(AWQ) generate $(DEMO_OUT) -p "Call me Ishmael." -n 48 --temp 0.8 --top-p 0.95 --seed 7

# Reference-engine speed (prefill and decode tokens/s, min and median of repeats).
bench: build
	bash bench/reference_engine.sh $(MODEL)

# The full figures CI only checks on a prefix: perplexity of all of val.txt vs PyTorch.
check-full: build
	bash scripts/check-full $(MODEL) $(SHARED)/data/val.txt

clean:
	rm -rf build
