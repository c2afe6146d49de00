# notionsync — GNU make. `make` or `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

GO           ?= go
BIN_DIR      ?= bin
TEST_TIMEOUT ?= 20m
# Go files under version control's reach, minus vendored and testdata code
# (testdata may hold deliberately malformed sources).
GO_FILES = $(shell find . -name '*.go' -not -path './vendor/*' -not -path '*/testdata/*' -not -path './.git/*')
# Non-empty when there is at least one package under cmd/.
HAVE_CMDS = $(wildcard cmd/*/*.go)

.PHONY: help
help: ## Show this help
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_.-]+:.*## / { n++; name[n] = $$1; desc[n] = $$2; if (length($$1) > w) w = length($$1) } \
		END { for (i = 1; i <= n; i++) printf "  %-" w "s  %s\n", name[i], desc[i] }' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## Install redis-server, PostgreSQL and chromium (apt-get, as root); fetch Notion's pinned API description (npm)
	@scripts/ensure-deps.sh redis postgres chromium
	@scripts/notion-contract.sh

.PHONY: build
build: ## Compile every package and put the cmd/* binaries in bin/
	$(GO) build ./...
ifneq ($(strip $(HAVE_CMDS)),)
	@mkdir -p $(BIN_DIR)
	$(GO) build -o $(BIN_DIR)/ ./cmd/...
endif

.PHONY: test
test: deps vet fmt-check ## Vet, check formatting, run all tests with -race
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

.PHONY: bench
bench: deps ## Run the benchmarks (no tests)
	$(GO) test -run '^$$' -bench . -benchmem ./...

.PHONY: screenshots
screenshots: deps ## Regenerate the console screenshots in docs/ (headless chromium)
	NOTIONSYNC_SCREENSHOTS=$(CURDIR)/docs $(GO) test -count=1 -run '^TestConsoleInBrowser$$' ./internal/control/

.PHONY: vet
vet: ## go vet ./...
	$(GO) vet ./...

.PHONY: fmt-check
fmt-check: ## Fail if any Go file is not gofmt-formatted
	@unformatted="$$($(if $(GO_FILES),gofmt -l $(GO_FILES),true))"; \
	if [[ -n "$$unformatted" ]]; then \
		echo "gofmt needed (run 'make fmt') on:"; echo "$$unformatted"; exit 1; \
	fi

.PHONY: fmt
fmt: ## Format all Go files with gofmt
	$(if $(GO_FILES),gofmt -w $(GO_FILES),@echo "no Go files")

.PHONY: lint
lint: fmt-check vet ## gofmt check, go vet, and golangci-lint when installed
	@if command -v golangci-lint >/dev/null 2>&1; then \
		golangci-lint run ./...; \
	else \
		echo "golangci-lint not installed; skipped (see .golangci.yml for the pinned config)"; \
	fi

.PHONY: clean
clean: ## Remove built binaries and the test cache
	rm -rf $(BIN_DIR)
	$(GO) clean -testcache

.PHONY: docs
docs: ## Regenerate docs/configuration.md and .env.example from the configuration
	$(GO) run ./internal/tools/gendocs

.PHONY: compose-check
compose-check: ## Validate docker-compose.yml (config -q, every profile; a blank required variable must fail)
	@scripts/ensure-deps.sh docker-compose
	scripts/compose-check.sh

.PHONY: images
images: ## Build the worker, scheduler and notion-sandbox images (needs Docker with BuildKit)
	docker compose --profile sandbox build

# ---------------------------------------------------------------------------
# Application targets (demo, run, ...) go below this line. Give each one a
# `## description` so that `make help` lists it.
# ---------------------------------------------------------------------------

WORKERS   ?= 2
DEMO_ARGS ?=

.PHONY: demo
demo: build ## Run the whole system locally against the Notion sandbox (Ctrl-C stops it)
	@scripts/ensure-deps.sh redis
	$(BIN_DIR)/demo -bin $(BIN_DIR) $(DEMO_ARGS)

.PHONY: run
run: build ## Run scheduler + workers against real Notion (credentials from the environment; see README)
	@scripts/ensure-deps.sh redis
	BIN_DIR=$(BIN_DIR) WORKERS=$(WORKERS) scripts/run-local.sh

# fleet: every scenario at 1,000 connections, then kill-sync (SIGKILL a worker
# mid-drain and mid-page; PASS when the connection stores a page again within
# 20 s), which needs workspaces that take a while to backfill.
.PHONY: fleet
fleet: build ## Fleet load and chaos suite, long version, then kill-sync (bench/fleet; about 20 min on 2 cores)
	@scripts/ensure-deps.sh redis
	go run ./bench/fleet -bin $(BIN_DIR) -scenario all -connections 1000 -duration 3m
	go run ./bench/fleet -bin $(BIN_DIR) -scenario kill-sync -connections 20 -pages 100 -blocks 2 -rate-limit 90 -workers 3 -concurrency 10 -sync-interval 5m -kills 6

.PHONY: fleet-cluster
fleet-cluster: build ## The same suite on a 3-master Redis Cluster (3 replicas; chaos SIGKILLs a master; commands per master reported; about 20 min)
	@scripts/ensure-deps.sh redis
	go run ./bench/fleet -bin $(BIN_DIR) -redis cluster -scenario all -connections 1000 -duration 3m

.PHONY: fleet-short
fleet-short: ## Short fleet suite, the version in make test (about 3 min; includes chaos on a Redis Cluster)
	@scripts/ensure-deps.sh redis
	$(GO) test -race -count=1 -run TestFleetShort ./bench/fleet
