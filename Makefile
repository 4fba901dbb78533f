# Thin wrapper over CMake: `make demo` and `make test` install what is missing (Debian 12),
# configure, build and run. Everything real lives in CMakeLists.txt.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
DATA       ?= /usr/share/datasets/fashion-mnist
PACKAGES    = cmake gcc make pkg-config libopenblas-dev liblapacke-dev libfftw3-dev libcmocka-dev \
              libopenmpi-dev openmpi-bin \
              zlib1g-dev dataset-fashion-mnist gnuplot-nox python3 python3-numpy
# The reliability checks (docs/reliability.md): libFuzzer targets, ThreadSanitizer, valgrind.
FUZZ_BUILD   ?= build-fuzz
TSAN_BUILD   ?= build-tsan
FUZZ_SECONDS ?= 60
RELIABILITY_PACKAGES = clang libclang-rt-14-dev valgrind
# The CUDA backend (docs/gpu.md): built whenever the CUDA toolkit's nvcc (12 or later, in its
# standard place first) is here, GPU or not.
CUDA_BUILD ?= build-cuda
NVCC       ?= $(firstword $(wildcard /usr/local/cuda/bin/nvcc) $(shell command -v nvcc 2>/dev/null))

.PHONY: all deps build asan test test-fast test-guarded demo seed bench install clean \
        deps-reliability fuzz tsan valgrind cuda

all: build

# Install the Debian packages of $(1) that are missing: as root directly, otherwise print the
# command and stop with status 2.
define install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "missing Debian packages; run:" >&2; \
	    echo "  sudo apt-get install -y$$missing" >&2; \
	    exit 2; \
	  fi; \
	fi
endef

deps:
	$(call install_missing,$(PACKAGES))

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DFNET_WERROR=ON
	cmake --build $(BUILD) -j$(JOBS)

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFNET_SANITIZE=ON -DFNET_WERROR=ON
	cmake --build $(ASAN_BUILD) -j$(JOBS)

# Every test that runs without a GPU; the backend tests again on the guarded backend (its memory
# faults when host code touches it: docs/design.md, "Memory domains"); the same suite under
# ASan + UBSan (LeakSanitizer on); then the reliability checks: ThreadSanitizer, valgrind, each
# fuzz target for FUZZ_SECONDS; and, where nvcc is, the CUDA build with its gpu tests (which
# skip without a GPU).
test: build asan
	ctest --test-dir $(BUILD) -LE gpu --output-on-failure -j$(JOBS)
	FNET_TEST_BACKEND=guarded ctest --test-dir $(BUILD) -L backends --output-on-failure -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) -LE gpu --output-on-failure -j$(JOBS)
	$(MAKE) tsan
	$(MAKE) valgrind
	$(MAKE) fuzz
	$(MAKE) cuda

# The CUDA backend built with -DFNET_WITH_CUDA=ON and the gpu-labelled tests run: on a machine
# without a GPU each says why it skips (and the CLI's --device cuda refusal is checked); with one
# they compare every op and layer with the CPU. Without nvcc: a note, nothing else.
cuda: deps
	@if [ -z "$(NVCC)" ]; then echo "cuda: no nvcc here (CUDA toolkit): the CUDA backend is not built"; exit 0; fi; \
	major=$$($(NVCC) --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p'); \
	if [ "$${major:-0}" -lt 12 ]; then echo "cuda: $(NVCC) is CUDA $${major:-?}; the backend needs 12 or later: not built"; exit 0; fi; \
	set -e; \
	cmake -S . -B $(CUDA_BUILD) -DCMAKE_BUILD_TYPE=Release -DFNET_WERROR=ON -DFNET_WITH_CUDA=ON \
	  -DCMAKE_CUDA_COMPILER=$(NVCC); \
	cmake --build $(CUDA_BUILD) -j$(JOBS); \
	ctest --test-dir $(CUDA_BUILD) -L gpu --output-on-failure -j$(JOBS); \
	ctest --test-dir $(CUDA_BUILD) -R '^cli_test_fnet_train$$' --output-on-failure

# The tools of the reliability checks, as `deps` installs the build's (as root, else the command).
deps-reliability: deps
	$(call install_missing,$(RELIABILITY_PACKAGES))

# libFuzzer targets (tests/fuzz), built by clang with ASan + UBSan, each run FUZZ_SECONDS, two at a
# time; a crash, leak, hang or out-of-memory fails. Inputs found go to $(FUZZ_BUILD)/fuzz/work/.
fuzz: deps-reliability
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DFNET_FUZZ=ON -DFNET_WERROR=ON -DFNET_BUILD_TESTS=OFF -DFNET_BUILD_EXPERIMENTS=OFF
	cmake --build $(FUZZ_BUILD) -j$(JOBS)
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The CMocka tests under ThreadSanitizer (the thread tests are tests/reliability/test_threads.c),
# OpenBLAS's own threads suppressed (tests/reliability/tsan.supp); ASLR off, as TSan's shadow
# mapping wants on some kernels.
tsan: deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFNET_TSAN=ON -DFNET_WERROR=ON -DFNET_WITH_MPI=OFF \
	  -DFNET_BUILD_EXPERIMENTS=OFF
	cmake --build $(TSAN_BUILD) -j$(JOBS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/reliability/tsan.supp \
	  setarch $$(uname -m) -R \
	  ctest --test-dir $(TSAN_BUILD) -R '^test_' -LE 'gpu|slow' --output-on-failure -j$(JOBS)

# Valgrind memcheck, zero errors: a short fnet-train run (train, save, resume) and the unit tests
# of what reads outside input (tests/reliability/valgrind.sh).
valgrind: deps-reliability build
	tests/reliability/valgrind.sh $(BUILD) $(DATA)

test-fast: build
	ctest --test-dir $(BUILD) -L unit --output-on-failure -j$(JOBS)

# The backend tests on the guarded backend alone.
test-guarded: build
	FNET_TEST_BACKEND=guarded ctest --test-dir $(BUILD) -L backends --output-on-failure -j$(JOBS)

# Dense against compressed on Fashion-MNIST (README, "fnet-compare"): the wide dense network,
# its 1024x1024 middle layer as a rank-8 tensor train, a tensor ring, a Tucker and a CP layer
# (experiments/compare.h), a rank-32 low-rank, a block-circulant (64x64 blocks) and a
# density-0.1 sparse layer (SET), the dense run pruned to 10%, and the dense network trained by
# L-BFGS and CG; Adam, batch 256, 10 epochs, one seed. The table on stdout; JSON lines, CSV and
# the plot (PNG, SVG) in $(BUILD)/demo.*. docs/results.md has the full run (tools/results.sh: 3
# seeds and the compression sweeps).
demo: build
	$(BUILD)/bin/fnet-compare --data $(DATA) --json $(BUILD)/demo.jsonl --csv $(BUILD)/demo.csv \
	  --plot $(BUILD)/demo

# The seed network of the original study on Fashion-MNIST.
seed: build
	$(BUILD)/bin/fnet-train --data $(DATA) --model dense:64,relu,dense:32,relu,dense:10 \
	  --optim adam --lr 1e-3 --batch 32 --epochs 10 --val-split 0.2

bench: build
	$(BUILD)/bin/fnet-bench --data $(DATA)

# L-BFGS and CG against Adam, SGD, momentum and RMSprop on the seed network (docs/optim.md):
# a table of the time each needs to reach 0.85 test accuracy, JSON lines and a plot.
optim-experiment: build
	$(BUILD)/bin/fnet-optim --data $(DATA) --json $(BUILD)/fnet-optim.jsonl --plot $(BUILD)/fnet-optim
.PHONY: optim-experiment

# docs/results.md and docs/results/: every variant over 3 seeds, the compression sweeps and the
# pruning curve, about 30 minutes (tools/results.sh).
results: build
	tools/results.sh $(BUILD) $(DATA)
.PHONY: results

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(TSAN_BUILD) $(CUDA_BUILD)
