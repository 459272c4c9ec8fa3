# Developer entry points. `make` alone lists them. Everything builds with CMake into
# $(BUILD_DIR); the sanitizer build lives apart in $(ASAN_BUILD_DIR).

BUILD_DIR ?= build
ASAN_BUILD_DIR ?= build-asan
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2
CMAKE ?= cmake
CTEST ?= ctest
CLANG_FORMAT ?= clang-format

.DEFAULT_GOAL := help
.PHONY: help deps build run tap test test-asan chaos format clean

help:
	@echo "Targets:"
	@echo "  make deps       install the Debian packages the project needs (scripts/install-deps.sh)"
	@echo "  make build      configure (first time only) and build into $(BUILD_DIR)/"
	@echo "  make run        build, then run the broker and the five services (Ctrl-C to stop)"
	@echo "  make tap        watch the events of a running \`make run\` live (TAP_ARGS=--from-start ...)"
	@echo "  make test       build, then run every test with CTest"
	@echo "  make chaos      a long chaos run (SIGKILL and restart every process under load),"
	@echo "                  then a crash at every failpoint"
	@echo "                  (CHAOS_ORDERS, CHAOS_SECONDS, CHAOS_SEED to change or replay it)"
	@echo "  make test-asan  the same with AddressSanitizer + UBSan, in $(ASAN_BUILD_DIR)/"
	@echo "  make format     clang-format -i the project's .cpp/.hpp files"
	@echo "  make clean      remove $(BUILD_DIR)/ and $(ASAN_BUILD_DIR)/"
	@echo "Variables: BUILD_DIR=$(BUILD_DIR) BUILD_TYPE=$(BUILD_TYPE) JOBS=$(JOBS)"

deps:
	@scripts/install-deps.sh

# Configure only when there is no cache yet; later CMakeLists.txt edits are picked up by
# `cmake --build`, which re-runs the configure step itself when needed.
$(BUILD_DIR)/CMakeCache.txt: | deps
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

$(ASAN_BUILD_DIR)/CMakeCache.txt: | deps
	$(CMAKE) -S . -B $(ASAN_BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DOP_SANITIZE=ON

build: deps $(BUILD_DIR)/CMakeCache.txt
	$(CMAKE) --build $(BUILD_DIR) -j $(JOBS)

run: build
	scripts/run.sh $(BUILD_DIR)

tap: build
	$(BUILD_DIR)/bin/tap $(TAP_ARGS)

# CTest's summary is the last thing it prints and its exit code is make's: nothing after it.
test: build
	$(CTEST) --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

# The short chaos run is part of `make test`; this one is longer. A failing run prints its seed:
# `make chaos CHAOS_SEED=<seed>` replays the same kills and orders.
CHAOS_ORDERS ?= 3000
CHAOS_SECONDS ?= 60
chaos: build
	OP_CHAOS_ORDERS=$(CHAOS_ORDERS) OP_CHAOS_SECONDS=$(CHAOS_SECONDS) OP_CHAOS_SEED=$(CHAOS_SEED) \
		$(BUILD_DIR)/bin/chaos_tests

test-asan: deps $(ASAN_BUILD_DIR)/CMakeCache.txt
	$(CMAKE) --build $(ASAN_BUILD_DIR) -j $(JOBS)
	$(CTEST) --test-dir $(ASAN_BUILD_DIR) --output-on-failure -j $(JOBS)

# Tracked and new (not ignored) sources, so build trees and other ignored files are skipped.
format:
	git ls-files -z --cached --others --exclude-standard -- '*.cpp' '*.hpp' \
		| xargs -0 -r $(CLANG_FORMAT) -i

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR)
