# tierd — build, test and benchmark targets. README and .ci/run use these, nothing else.
GO       ?= go
GOBIN    := $(shell $(GO) env GOPATH)/bin
PKGS     := ./...
FUZZTIME ?= 10s

# Pinned test servers and clients (installed into $(GOBIN) when missing).
MINIO_PKG := github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
MC_PKG    := github.com/minio/mc@v0.0.0-20250313080218-cf909e1063a9

# Pinned linters (installed into $(GOBIN) when missing or of another version).
STATICCHECK_VERSION := 0.8.2
STATICCHECK_PKG     := honnef.co/go/tools/cmd/staticcheck@v$(STATICCHECK_VERSION)
GOVULNCHECK_VERSION := 1.9.0
GOVULNCHECK_PKG     := golang.org/x/vuln/cmd/govulncheck@v$(GOVULNCHECK_VERSION)
# VULNDB points govulncheck at another copy of the Go vulnerability database (e.g.
# file:///srv/vulndb) on machines that cannot reach the public one.
VULNDB ?=
RCLONE_PKG := github.com/rclone/rclone@v1.75.1

export TIERD_MINIO_BIN := $(GOBIN)/minio
export TIERD_MC_BIN    := $(GOBIN)/mc

.PHONY: all build demo check test race lint vulncheck reliability bench bench-report fuzz tools minio mc staticcheck govulncheck rclone rsync clean

all: build

build:
	$(GO) build -o bin/ ./cmd/...

## demo: generate a small RocketMQ store with the broker simulator (a dev tool, not part of
## tierd), offload it to a local posix tier, show what moved. The store's file sizes are
## the embedded demo config's (cmd/tierd/demo.go, demoStoreCommand; a test checks they agree).
DEMO_DIR ?= tierd-demo
demo:
	rm -rf $(DEMO_DIR)
	$(GO) run ./devtools/cmd/brokersim rocketmq --dir $(DEMO_DIR)/store --topics 2 --queues 2 --messages 20000 --commitlog-size 1MiB --cq-size 60000 --index-slots 1000 --index-items 4000 --body-size 256 --preallocate-next
	$(GO) run ./cmd/tierd demo --dir $(DEMO_DIR)

## check: what CI runs (.ci/run) and what to run before landing — the linters (gofmt, go
## vet, staticcheck, govulncheck), then every test under the race detector and a short
## fuzz pass of every Fuzz target.
check: lint test

## test: every test under the race detector (the failpoint package's own test also with its
## build tag; the reliability tests build tierd with it), then every Fuzz target for 5 s.
test: tools
	$(GO) test -race -timeout 40m $(PKGS)
	$(GO) test -race -tags failpoint ./internal/failpoint
	$(MAKE) fuzz FUZZTIME=5s

race: tools
	$(GO) test -race -timeout 40m $(PKGS)

## lint: gofmt, go vet, staticcheck and govulncheck, all clean.
lint: staticcheck govulncheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt -l lists files to format:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GOBIN)/staticcheck $(PKGS)
	@$(MAKE) --no-print-directory vulncheck

## vulncheck: govulncheck on every package (only vulnerabilities in code tierd calls are
## reported). Where the vulnerability database cannot be reached (no network, and no
## VULNDB), it says so loudly and does not fail; any finding fails it.
vulncheck: govulncheck
	@out=$$($(GOBIN)/govulncheck $(if $(VULNDB),-db $(VULNDB)) $(PKGS) 2>&1); rc=$$?; echo "$$out"; \
	if [ $$rc -ne 0 ] && echo "$$out" | grep -q '^govulncheck: fetching vulnerabilities'; then \
	  echo "vulncheck: NOT CHECKED: the Go vulnerability database cannot be reached from this machine (set VULNDB=file:///path to a copy)"; exit 0; \
	fi; exit $$rc

## reliability: the crash harness with 200 SIGKILLs (make check runs 20), and the other
## reliability tests (outages, a flaky store through a fault proxy, full tier, bad input,
## security). KILLS, SEED, FLAKY_FOR (each fault scenario; make check: 8s) and LONG_OUTAGE
## (MinIO stopped; make check: 25s) change them.
KILLS ?= 200
SEED  ?= 0
FLAKY_FOR   ?= 60s
LONG_OUTAGE ?= 2m
reliability: tools
	$(GO) test -race -timeout 150m -count=1 -v ./reliability -kills $(KILLS) -seed $(SEED) -flaky-for $(FLAKY_FOR) -long-outage $(LONG_OUTAGE)

## bench: the speed and memory benchmarks (large files; see README "Benchmarks").
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 180m $(PKGS)

## bench-report: tierd against dd, mc and rclone on this machine, and the memory soak, into
## BENCHMARKS.md and benchmarks/ (plots, results.json). Under an hour on 2 cores; BENCH_MODE=quick
## takes about 5 minutes (small files; the report says it is a quick run), BENCH_MODE=full longer.
## BENCH_FLAGS passes more flags (go run ./devtools/benchreport -h), e.g. "-sections posix", or
## "-sections scale -keep benchmarks/results.json" (measure one section, keep the others from the last run).
BENCH_MODE  ?= default
BENCH_FLAGS ?=
bench-report: tools rclone rsync
	$(GO) run ./devtools/benchreport -mode $(BENCH_MODE) -command "make bench-report$(if $(filter-out default,$(BENCH_MODE)), BENCH_MODE=$(BENCH_MODE))$(if $(BENCH_FLAGS), BENCH_FLAGS='$(BENCH_FLAGS)')" $(BENCH_FLAGS)

## fuzz: every Fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

tools: minio mc

staticcheck:
	@$(GOBIN)/staticcheck -version 2>/dev/null | grep -qF '($(STATICCHECK_VERSION))' || { echo "installing staticcheck $(STATICCHECK_VERSION)"; $(GO) install $(STATICCHECK_PKG); }

govulncheck:
	@$(GOBIN)/govulncheck -version 2>/dev/null | grep -qF 'govulncheck@v$(GOVULNCHECK_VERSION)' || { echo "installing govulncheck $(GOVULNCHECK_VERSION)"; $(GO) install $(GOVULNCHECK_PKG); }

minio:
	@test -x $(TIERD_MINIO_BIN) || { echo "installing MinIO server (a few minutes, once)"; $(GO) install $(MINIO_PKG); }

mc:
	@test -x $(TIERD_MC_BIN) || { echo "installing MinIO client"; $(GO) install $(MC_PKG); }

# rclone is only a baseline of bench-report: if it cannot be installed, the report says so.
rclone:
	@test -x $(GOBIN)/rclone || { echo "installing rclone (a few minutes, once)"; $(GO) install $(RCLONE_PKG) || echo "rclone could not be installed; bench-report measures without it"; }

# rsync (a Debian package) is only a baseline of bench-report's scale section: if it cannot be
# installed, the report says so.
rsync:
	@command -v rsync >/dev/null || { echo "installing rsync (apt-get)"; apt-get install -y rsync >/dev/null 2>&1 || sudo -n apt-get install -y rsync >/dev/null 2>&1 || echo "rsync could not be installed; bench-report measures the scale section without it"; }

clean:
	rm -rf bin/
