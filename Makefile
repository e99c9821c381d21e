# Thin wrapper: the build is CMake, the tests are ctest.
#   make run    install missing Debian packages, build, start llmux (mock provider, embedded config)
#   make test   build and run the whole suite (ctest)
#   make bench  benchmark llmux against direct, nginx and a peer gateway
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
APT_PACKAGES = build-essential cmake pkg-config libuv1-dev libcurl4-openssl-dev libjsmn-dev \
               liblua5.4-dev node-llhttp libcmocka-dev libsqlite3-dev curl \
               libpq-dev libhiredis-dev libssl-dev

.PHONY: all deps build run test test-sanitize bench install clean

all: build

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

run: build
	$(BUILD)/llmux $(ARGS)

tests/clients/node_modules: tests/clients/package.json
	@if [ -f tests/clients/package-lock.json ]; then cd tests/clients && npm ci --no-audit --no-fund --loglevel=error || echo "npm ci failed: client tests will be skipped"; fi
	@touch $@ 2>/dev/null || true

test: build tests/clients/node_modules
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer).
test-sanitize: deps tests/clients/node_modules
	cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DLLMUX_SANITIZE=ON
	cmake --build $(BUILD)-asan -j$(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j$(JOBS)

bench: build
	bash tests/bench/run.sh

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD)-asan
