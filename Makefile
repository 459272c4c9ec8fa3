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
.PHONY: help deps build run tap test test-asan chaos fuzz bench format clean

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
	@echo "  make fuzz       run each libFuzzer target for FUZZ_SECONDS (clang, in $(FUZZ_BUILD_DIR)/);"
	@echo "                  crash inputs land in tests/fuzz/crashes/ and make test replays them"
	@echo "  make bench      the standard benchmark suite (under 5 minutes): floor, broker alone, ours"
	@echo "                  at 1 and 64 clients, sustained, and the original side by side; one"
	@echo "                  table of figures against targets (BENCH_RUNS, BENCH_ARGS=--json ...)"
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

# The tap connects with the operator's key from make run's data dir (OP_INSECURE=1: no key).
tap: build
	$(BUILD_DIR)/bin/tap $(if $(filter 1,$(OP_INSECURE)),--insecure,--keys-dir $(or $(OP_DATA_DIR),var)/keys) $(TAP_ARGS)

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

# libFuzzer with clang, in its own build tree. Each target starts from its committed seed corpus
# (tests/fuzz/corpus/T) and keeps what it learns in $(FUZZ_BUILD_DIR)/corpus/T; an input that
# crashes is written to tests/fuzz/crashes/T/, where `make test` replays it from then on.
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= event_decoder order_request segment_log
fuzz:
	@scripts/install-deps.sh --fuzz
	CC=clang CXX=clang++ $(CMAKE) -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOP_FUZZ=ON
	$(CMAKE) --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_BUILD_DIR)/corpus/$$t tests/fuzz/crashes/$$t; \
		log=$(FUZZ_BUILD_DIR)/fuzz_$$t.log; \
		echo "==> fuzz_$$t for $(FUZZ_SECONDS) s (log: $$log)"; \
		$(FUZZ_BUILD_DIR)/bin/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=tests/fuzz/crashes/$$t/ \
			$(FUZZ_BUILD_DIR)/corpus/$$t tests/fuzz/corpus/$$t > $$log 2>&1 \
		|| { tail -40 $$log; echo "fuzz_$$t crashed: the input is in tests/fuzz/crashes/$$t/"; exit 1; }; \
		grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss" $$log; \
		echo "corpus: $$(ls $(FUZZ_BUILD_DIR)/corpus/$$t | wc -l) inputs"; \
	done

# The standard suite. Needs the original's Python packages too (--bench). `build/bin/bench
# --help` for single runs: --url, --concurrency, --rate, --floor, --broker, --compare-original.
BENCH_RUNS ?= 3
bench: build
	@scripts/install-deps.sh --bench
	$(BUILD_DIR)/bin/bench --suite --runs $(BENCH_RUNS) $(BENCH_ARGS)

test-asan: deps $(ASAN_BUILD_DIR)/CMakeCache.txt
	$(CMAKE) --build $(ASAN_BUILD_DIR) -j $(JOBS)
	$(CTEST) --test-dir $(ASAN_BUILD_DIR) --output-on-failure -j $(JOBS)

# Tracked and new (not ignored) sources, so build trees and other ignored files are skipped.
format:
	git ls-files -z --cached --others --exclude-standard -- '*.cpp' '*.hpp' \
		| xargs -0 -r $(CLANG_FORMAT) -i

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR)
