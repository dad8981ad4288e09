# molt — see README.md. Every target works from a clean checkout on Debian
# with Go 1.26; `make deps` installs QEMU when it is missing.

GO       ?= go
MOLT     := $(GO) run ./tools/molt
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE    := build/molt.elf
# Packages that run on the host (everything except kernel images' mains).
HOSTPKGS := ./...

.PHONY: all image run debug test unit selftest conformance deps vet lint-wb bench fuzz clean

all: image

# molt build also writes the signed bundle build/molt.img (for molt push),
# signed with build/dev.key, which it generates when missing.
image:
	$(MOLT) build -o $(IMAGE) -version $(VERSION) ./cmd/kernel

run: deps image
	$(MOLT) run $(IMAGE)

debug: deps image
	$(MOLT) debug $(IMAGE)

# make test: host unit tests (with -race), then the in-VM self-tests and the
# Go distribution's conformance programs booted on molt.
test: deps vet unit lint-wb selftest conformance

# MOLT_REQUIRE_TOOLS=1: a test whose real peer (memcapable, memcslap,
# ping) is missing fails instead of skipping; `make deps` installs them.
# The test binaries are compiled in parallel first (-run '^$' runs nothing),
# then run one package at a time (-p 1): many packages boot QEMU under TCG,
# and on a 2-core machine VMs of different packages starved each other
# until clients timed out (memcslap against a Linux guest, in CI).
unit: deps
	@$(GO) test -race -count=1 -run '^$$' $(HOSTPKGS) >/dev/null
	MOLT_REQUIRE_TOOLS=1 $(GO) test -race -count=1 -p 1 $(HOSTPKGS)

vet:
	$(GO) vet -unsafeptr=false -framepointer=false ./...

# Trap-context code must not contain write barriers (heap-pointer writes):
# list every write-barrier site the compiler emits in the trap-path
# packages, and fail if there is any.
lint-wb:
	@out=$$(GOOS=linux GOARCH=amd64 CGO_ENABLED=0 $(GO) build -gcflags='github.com/molt-os/molt/kernel=-d=wb' -gcflags='github.com/molt-os/molt/drivers/internal/...=-d=wb' -gcflags='github.com/molt-os/molt/drivers/uart=-d=wb' -gcflags='github.com/molt-os/molt/drivers/lapic=-d=wb' -gcflags='github.com/molt-os/molt/drivers/ioapic=-d=wb' -gcflags='github.com/molt-os/molt/drivers/pit=-d=wb' -gcflags='github.com/molt-os/molt/drivers/rtc=-d=wb' -gcflags='github.com/molt-os/molt/drivers/debugexit=-d=wb' -gcflags='github.com/molt-os/molt/boot/pvh=-d=wb' -o /dev/null ./cmd/kernel 2>&1 | grep -v '^#' | grep -E 'kernel/(boot|clock|console|crash|fd|frames|futex|paging|procstack|random|sched|syscall|trap|vdso|vm)\.go|drivers/(internal|uart|lapic|ioapic|pit|rtc|debugexit)/|boot/pvh' ); \
	if [ -n "$$out" ]; then echo "write barriers in trap-context code:"; echo "$$out"; exit 1; else echo "lint-wb: no write barriers in trap-context code"; fi

selftest: deps
	$(MOLT) selftest

conformance: deps
	$(MOLT) conformance

# make bench: boot time and idle memory of the default image; kv throughput
# and latency against Debian's memcached in a Linux guest (same QEMU, same
# forwarding); TCP round trips and throughput to a netns peer (root); the
# self-update's blackout at 1/100/1,000 connections and 10k/200k items
# against a cold reboot (root). See
# docs/performance.md; `go run ./tools/molt bench -svg docs/perf` redraws
# its charts.
bench: deps
	$(MOLT) bench

# make fuzz: run the decoders' fuzz targets for a while each.
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzPatch -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./boot/image
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./boot/pvh
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./updater/handoff
	$(GO) test -run '^$$' -fuzz FuzzVerify -fuzztime $(FUZZTIME) ./updater/image
	$(GO) test -run '^$$' -fuzz FuzzReadRequest -fuzztime $(FUZZTIME) ./updater/push
	$(GO) test -run '^$$' -fuzz FuzzReadReply -fuzztime $(FUZZTIME) ./updater/push
	$(GO) test -run '^$$' -fuzz FuzzDecodePending -fuzztime $(FUZZTIME) ./updater/service
	$(GO) test -run '^$$' -fuzz FuzzParseManifest -fuzztime $(FUZZTIME) ./updater/task
	$(GO) test -run '^$$' -fuzz FuzzDecodeProcessTable -fuzztime $(FUZZTIME) ./updater/task
	$(GO) test -run '^$$' -fuzz FuzzDecodeState -fuzztime $(FUZZTIME) ./updater/task
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./netstack/conntable
	$(GO) test -run '^$$' -fuzz FuzzDecodeNetState -fuzztime $(FUZZTIME) ./netstack
	$(GO) test -run '^$$' -fuzz FuzzTaskState -fuzztime $(FUZZTIME) ./apps/kv
	$(GO) test -run '^$$' -fuzz FuzzStatsState -fuzztime $(FUZZTIME) ./apps/kv
	$(GO) test -run '^$$' -fuzz FuzzEchoState -fuzztime $(FUZZTIME) ./apps/echo
	$(GO) test -run '^$$' -fuzz FuzzParseRequest -fuzztime $(FUZZTIME) ./apps/quake/qw
	$(GO) test -run '^$$' -fuzz FuzzParseReply -fuzztime $(FUZZTIME) ./apps/quake/qw
	$(GO) test -run '^$$' -fuzz FuzzServerMessages -fuzztime $(FUZZTIME) ./apps/quake/qw
	$(GO) test -run '^$$' -fuzz FuzzClientMessages -fuzztime $(FUZZTIME) ./apps/quake/qw
	$(GO) test -run '^$$' -fuzz FuzzChannelState -fuzztime $(FUZZTIME) ./apps/quake/qw
	$(GO) test -run '^$$' -fuzz FuzzChannelProcess -fuzztime $(FUZZTIME) ./apps/quake/qw
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./apps/quake/bsp

# deps installs what the tests run as real peers, through apt-get, when a
# command is missing: QEMU, libmemcached-tools (memcapable, memcslap),
# memcached (the kv benchmark's reference) and iputils-ping.
# Each entry is a command (looked up on $PATH) or an absolute path, then the
# Debian package that provides it.
DEPS := qemu-system-x86_64:qemu-system-x86 memccapable:libmemcached-tools memcslap:libmemcached-tools memcached:memcached ping:iputils-ping \
	/usr/games/mvdsv:mvdsv /usr/lib/quakeworld/ktx/qwprogs.so:ktx quakestat:qstat
deps:
	@missing=$$(for d in $(DEPS); do command -v $${d%%:*} >/dev/null 2>&1 || test -e $${d%%:*} || echo $${d#*:}; done | sort -u); \
	if [ -n "$$missing" ]; then \
		echo "installing" $$missing "(apt-get)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

clean:
	rm -rf build
