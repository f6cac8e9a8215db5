# anvil: the two commands a fresh Debian 12 machine needs are `make demo` and `make test`.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# One pinned formatter for the whole repository (Debian 12's clang-format 14); `make test` checks it.
CLANG_FORMAT ?= clang-format-14
FORMAT_FILES = $(shell git ls-files '*.c' '*.h' '*.cc' '*.cu' '*.cuh')

.PHONY: all deps build test test-fast test-asan fuzz demo bench clean format format-check lint

all: build

deps:
	@scripts/install-deps.sh build

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_EXPORT_COMPILE_COMMANDS=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Everything: the suite on the optimised build, then unit/golden tests under ASan+UBSan, then fuzzing.
test:
	@scripts/install-deps.sh test
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory fuzz

test-fast: build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) -L unit

test-asan:
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DANVIL_SANITIZE=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --test-dir build-asan --output-on-failure -j $(JOBS) -L unit

fuzz:
	@scripts/fuzz.sh

demo:
	@scripts/install-deps.sh build
	@$(MAKE) --no-print-directory build
	@scripts/demo.sh

bench:
	@scripts/install-deps.sh bench
	@$(MAKE) --no-print-directory build
	@bench/run_all.sh

clean:
	rm -rf $(BUILD) build-asan build-fuzz

format:
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

format-check:
	@$(CLANG_FORMAT) --dry-run -Werror $(FORMAT_FILES) || { echo "format-check: run 'make format'"; exit 1; }

# Linted with the build's own compile commands, so each file sees the definitions (and #ifdef
# branches) it is built with.
lint: build
	clang-tidy-14 -p $(BUILD) --quiet $$(git ls-files 'src/*.c' 'cli/*.c')
	cppcheck --quiet --enable=warning,performance --inline-suppr --project=$(BUILD)/compile_commands.json --file-filter='*.c'
