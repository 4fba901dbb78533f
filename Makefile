# Thin wrapper over CMake: `make demo` and `make test` install what is missing (Debian 12),
# configure, build and run. Everything real lives in CMakeLists.txt.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
DATA       ?= /usr/share/datasets/fashion-mnist
PACKAGES    = cmake gcc make pkg-config libopenblas-dev liblapacke-dev libfftw3-dev libcmocka-dev \
              zlib1g-dev dataset-fashion-mnist gnuplot-nox

.PHONY: all deps build asan test test-fast demo bench install clean

all: build

# Install the Debian packages that are missing: as root directly, otherwise print the command.
deps:
	@missing=""; for p in $(PACKAGES); do \
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

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DFNET_WERROR=ON
	cmake --build $(BUILD) -j$(JOBS)

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFNET_SANITIZE=ON -DFNET_WERROR=ON
	cmake --build $(ASAN_BUILD) -j$(JOBS)

# Every test that runs without a GPU, then the same suite under ASan + UBSan (LeakSanitizer on).
test: build asan
	ctest --test-dir $(BUILD) -LE gpu --output-on-failure -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) -LE gpu --output-on-failure -j$(JOBS)

test-fast: build
	ctest --test-dir $(BUILD) -L unit --output-on-failure -j$(JOBS)

# The seed network of the original study on Fashion-MNIST.
demo: build
	$(BUILD)/bin/fnet-train --data $(DATA) --model dense:64,relu,dense:32,relu,dense:10 \
	  --optim adam --lr 1e-3 --batch 32 --epochs 10 --val-split 0.2

bench: build
	$(BUILD)/bin/fnet-bench --data $(DATA)

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
