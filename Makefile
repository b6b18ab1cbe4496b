# Every build, test and bench entry point. Each target works from a fresh
# clone on a fresh machine (as root, as CI runs) and skips work that is done.

SHELL := /bin/bash
.DEFAULT_GOAL := help

HOST_ARCH := $(shell uname -m | sed 's/aarch64/arm64/')
ARCH ?= $(HOST_ARCH)
OUT ?= out
DATA_HOME ?= $(if $(XDG_DATA_HOME),$(XDG_DATA_HOME),$(HOME)/.local/share)
# Where `make image` installs images and where the engine looks by default.
IMAGES_DIR ?= $(DATA_HOME)/quicksand/images

GO ?= go

APT_PACKAGES := qemu-system-x86 qemu-system-arm qemu-utils busybox-static debootstrap \
	e2fsprogs cpio xz-utils qemu-user-static binfmt-support

.PHONY: help deps agent image image-all test test-go run bench clean

help:
	@echo "make run      boot the default image and run a command in it"
	@echo "make test     build what is missing and run every test"
	@echo "make deps | agent | image [ARCH=arm64] | bench | clean"

# --- dependencies -------------------------------------------------------------
# apt packages are installed only when missing; the arm64 architecture is
# added to apt so that `apt-get download` can fetch the arm64 guest kernel.
deps:
	@missing=(); for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing+=($$p); done; \
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then dpkg --add-architecture arm64; missing+=(update); fi; \
	if [ $${#missing[@]} -gt 0 ]; then \
		echo "==> installing: $${missing[*]}"; \
		apt-get update -q >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$(printf '%s\n' "$${missing[@]}" | grep -vx update) >/dev/null; \
	fi
	@echo "==> deps ready"

# --- guest agent ----------------------------------------------------------------
AGENT_x86_64 := $(OUT)/agent/quicksand-agent-x86_64
AGENT_arm64 := $(OUT)/agent/quicksand-agent-arm64
AGENT_SOURCES := $(wildcard guest-agent/*.go internal/protocol/*.go) go.mod go.sum

agent: $(AGENT_x86_64) $(AGENT_arm64)

$(OUT)/agent/quicksand-agent-x86_64: $(AGENT_SOURCES)
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags='-s -w' -o $@ ./guest-agent

$(OUT)/agent/quicksand-agent-arm64: $(AGENT_SOURCES)
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags='-s -w' -o $@ ./guest-agent

# --- images -------------------------------------------------------------------
# build/image.sh skips every step that is up to date.
image: deps $(AGENT_$(ARCH))
	bash build/image.sh $(ARCH) $(AGENT_$(ARCH)) $(OUT)/image $(IMAGES_DIR)

image-all:
	$(MAKE) image ARCH=x86_64
	$(MAKE) image ARCH=arm64

# --- tests --------------------------------------------------------------------
GO_TEST_FLAGS ?= -count=1 -timeout 45m

test: deps agent image-all
	QUICKSAND_IMAGE_PATH=$(IMAGES_DIR) $(GO) test $(GO_TEST_FLAGS) ./...

# --- run ----------------------------------------------------------------------
CMD ?= uname -a; cat /etc/os-release | head -n 2; echo "hello from $$(hostname)"

run: deps agent image
	QUICKSAND_IMAGE_PATH=$(IMAGES_DIR) $(GO) run ./cmd/quicksand run '$(CMD)'

clean:
	rm -rf $(OUT)
