# Thin wrapper around CMake; CMakeLists.txt is the real build.
BUILD ?= build
TYPE ?= Release
CMAKE_FLAGS ?=

.PHONY: all deps test-deps build run test asan package fuzz clean bench

# Seconds each fuzz target runs for `make fuzz`.
FUZZ_SECONDS ?= 60

all: build

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(TYPE) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$$(nproc)

run: build
	$(BUILD)/ringgate -c conf/ringgate.yaml

test: test-deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(TYPE) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$$(nproc)
	ctest --test-dir $(BUILD) --output-on-failure

# The .deb uses Debian's BoringSSL; the .rpm is built against OpenSSL 3,
# which rpm distributions have.
package: build
	@scripts/install-deps.sh package
	cd $(BUILD) && cpack -G DEB
	cmake -S . -B $(BUILD)-rpm -DCMAKE_BUILD_TYPE=Release -DRINGGATE_TLS=openssl $(CMAKE_FLAGS)
	cmake --build $(BUILD)-rpm -j$$(nproc)
	cd $(BUILD)-rpm && cpack -G RPM && cp *.rpm ../$(BUILD)/

fuzz: test-deps
	scripts/fuzz.sh $(FUZZ_SECONDS)

# ringgate beside nginx and HAProxy (perf/harness.sh, docs/performance.md):
# writes perf/results/REPORT.md and charts. ROUNDS, SECONDS, SCENARIOS and
# QUICK=1 (1 round of 2 s) pass through, e.g. `make bench QUICK=1`.
bench: build
	@scripts/install-deps.sh bench
	ROUNDS="$(ROUNDS)" SECONDS="$(SECONDS)" SCENARIOS="$(SCENARIOS)" QUICK="$(QUICK)" \
		RINGGATE_BIN="$(BUILD)/ringgate" perf/harness.sh

clean:
	rm -rf $(BUILD) build-*
