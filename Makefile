# autotriage — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO       ?= go
BIN      := $(CURDIR)/bin
DIST     := $(CURDIR)/dist
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/autotriage/autotriage/services/internal/platform.version=$(VERSION)
MODULES  := proto services
SHARED   ?= $(abspath $(CURDIR)/../shared)
export AUTOTRIAGE_SHARED ?= $(SHARED)
export AUTOTRIAGE_DATASETS ?= $(SHARED)/datasets

-include deploy/Makefile.mk

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/buf $(BIN)/staticcheck: tools/go.mod tools/go.sum
	GOWORK=off $(GO) build -C tools -o $(BIN)/ github.com/bufbuild/buf/cmd/buf honnef.co/go/tools/cmd/staticcheck

# Vulnerability scanning runs offline: the database is built from the OSV files
# of the golang.org/x/vulndb version pinned in tools/go.mod (bump it with
# `cd tools && GOWORK=off go get golang.org/x/vulndb@latest`).
VULNDB := $(BIN)/vulndb.db

$(BIN)/govulncheck $(BIN)/vulndb $(BIN)/vulngate &: tools/go.mod tools/go.sum $(wildcard tools/vulndb/*.go tools/vulngate/*.go)
	GOWORK=off $(GO) build -C tools -o $(BIN)/ golang.org/x/vuln/cmd/govulncheck ./vulndb ./vulngate

$(VULNDB)/index/db.json: $(BIN)/vulndb tools/go.mod tools/go.sum
	cd tools && GOWORK=off $(GO) mod download golang.org/x/vulndb
	set -e; read -r dir ver <<<"$$(cd tools && GOWORK=off $(GO) list -m -f '{{.Dir}} {{.Version}}' golang.org/x/vulndb)"; \
	  $(BIN)/vulndb -osv "$$dir/data/osv" -version "$$ver" -out $(VULNDB)

$(BIN)/protoc-gen-go: proto/go.mod proto/go.sum
	$(GO) build -C proto -o $(BIN)/ google.golang.org/protobuf/cmd/protoc-gen-go

.PHONY: tools
tools: $(BIN)/buf $(BIN)/staticcheck $(BIN)/protoc-gen-go $(BIN)/govulncheck ## build the pinned developer tools into ./bin

.PHONY: build
build: ## build every binary into ./dist
	@mkdir -p $(DIST)
	cd services && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/ ./...

.PHONY: test
test: ## run every test with the race detector (embedded NATS, simulator over HTTP)
	cd proto && $(GO) test -race -count=1 ./...
	GOWORK=off $(GO) test -C tools -race -count=1 ./vulndb ./vulngate
	cd services && $(GO) test -race -count=1 -timeout 20m ./...

.PHONY: race
race: test ## alias of test: tests always run with -race

.PHONY: test-short
test-short: ## quick tests without the race detector
	cd services && $(GO) test -short -count=1 ./...

.PHONY: gowork-off
gowork-off: ## build and vet every module on its own (GOWORK=off)
	cd proto && GOWORK=off $(GO) build ./... && GOWORK=off $(GO) vet ./...
	cd services && GOWORK=off $(GO) build ./... && GOWORK=off $(GO) vet ./...
	cd tests/e2e && GOWORK=off $(GO) vet -tags e2e ./...

.PHONY: lint
lint: $(BIN)/staticcheck $(BIN)/buf ## gofmt, go vet, staticcheck, buf lint and vulncheck
	@out=$$(gofmt -l proto services tests | grep -v '\.pb\.go$$' || true); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	cd proto && $(GO) vet ./...
	cd services && $(GO) vet ./...
	cd services && $(BIN)/staticcheck ./...
	cd tests/e2e && $(GO) vet -tags e2e ./... && $(BIN)/staticcheck -tags e2e ./...
	cd proto && $(BIN)/buf lint
	@$(MAKE) --no-print-directory vulncheck

.PHONY: vulncheck
vulncheck: $(BIN)/govulncheck $(BIN)/vulngate $(VULNDB)/index/db.json ## govulncheck every module (tests and e2e too) against the pinned offline database
	cd services && set -o pipefail && $(BIN)/govulncheck -db file://$(VULNDB) -format json -test -tags e2e \
	  github.com/autotriage/autotriage/proto/... ./... github.com/autotriage/autotriage/tests/e2e/... \
	  | $(BIN)/vulngate -accept $(CURDIR)/tools/vulncheck-accept.txt

.PHONY: proto
proto: $(BIN)/buf $(BIN)/protoc-gen-go ## regenerate Go code from proto/autotriage/v1/*.proto
	cd proto && PATH=$(BIN):$$PATH $(BIN)/buf lint && PATH=$(BIN):$$PATH $(BIN)/buf generate

.PHONY: proto-check
proto-check: proto ## fail if the committed generated code differs from the .proto files
	@if [ -n "$$(git status --porcelain -- proto)" ]; then echo "generated protobuf code is out of date; run make proto and commit:"; git status --short -- proto; git --no-pager diff --stat -- proto; exit 1; fi
	@echo "generated code matches the .proto files"

.PHONY: fuzz
fuzz: ## run every fuzz target briefly (FUZZTIME, default 5s each); docs/design.md lists them
	@cd services && n=0; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | cut -c6- | sort); do \
	    n=$$((n+1)); echo "fuzz $$dir $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-5s} $$dir || exit 1; \
	  done; done; echo "$$n fuzz targets passed"

.PHONY: run
run: ## run the whole pipeline in one process: embedded JetStream, simulator, starter model (no Docker)
	cd services && $(GO) run ./autotriage up

.PHONY: bench
bench: ## run the benchmark report (writes bench-out/report.md and .json)
	cd services && $(GO) run ./autotriage bench --out $(CURDIR)/bench-out

.PHONY: docs
docs: ## rewrite the configuration reference in README.md from every binary's --help
	./scripts/config-reference.sh --update README.md

.PHONY: clean
clean: ## remove build outputs
	rm -rf $(BIN) $(DIST) bench-out
