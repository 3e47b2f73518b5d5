# Container targets of autotriage: images, compose up/down, e2e tests.
# Included by the root Makefile (`-include deploy/Makefile.mk`); works on its
# own too: `make -f deploy/Makefile.mk images`. Needs Go and a Docker engine,
# no registry: every image is built from this repo's sources on `scratch`.

DEPLOY_MK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
AUTOTRIAGE_ROOT := $(abspath $(DEPLOY_MK_DIR)/..)

VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GO      ?= go
DOCKER  ?= docker
# `docker compose` (v2) when the plugin is there, else docker-compose (v1.29).
COMPOSE ?= $(shell if $(DOCKER) compose version >/dev/null 2>&1; then echo "$(DOCKER) compose"; else echo docker-compose; fi)
# Images to build (default: all). SKIP_MISSING=1 skips a stage whose main
# package does not exist or compile yet instead of failing.
IMAGES  ?=
SKIP_MISSING ?= 0
# e2e: a -run pattern, the overall timeout, extra `go test` flags.
E2E_RUN     ?= .
E2E_TIMEOUT ?= 25m
E2E_FLAGS   ?= -v
# `make down DOWN_FLAGS=-v` also deletes the NATS volume (every stream and model).
DOWN_FLAGS  ?=

.PHONY: images
images: ## build the scratch images autotriage/{nats,fetcher,classifier,writer,freshdesk-sim,cli} from local Go builds
	@VERSION='$(VERSION)' GO='$(GO)' DOCKER='$(DOCKER)' SKIP_MISSING='$(SKIP_MISSING)' \
	  $(AUTOTRIAGE_ROOT)/deploy/docker/build-images.sh $(IMAGES)

# .env for docker compose: the demo settings of .env.example with a random
# webhook secret. Never overwritten once it exists.
$(AUTOTRIAGE_ROOT)/.env: | $(AUTOTRIAGE_ROOT)/.env.example
	@secret=$$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'); \
	  sed "s/^AUTOTRIAGE_WEBHOOK_SECRET=.*/AUTOTRIAGE_WEBHOOK_SECRET=$$secret/" $(AUTOTRIAGE_ROOT)/.env.example >$@; \
	  chmod 600 $@; echo "wrote $@ from .env.example (demo settings, random webhook secret)"

# The broker's NKeys (one seed per role, and their public keys for the NATS
# server): created once, kept afterwards; rotate with
# `autotriage secrets nats --rotate ROLE` (SECURITY.md).
$(AUTOTRIAGE_ROOT)/.secrets/nats/nkeys.env:
	cd $(AUTOTRIAGE_ROOT)/services && $(GO) run ./autotriage secrets nats --dir $(AUTOTRIAGE_ROOT)/.secrets/nats

.PHONY: secrets
secrets: $(AUTOTRIAGE_ROOT)/.secrets/nats/nkeys.env ## create the broker's NKeys in .secrets/nats (never committed)

$(AUTOTRIAGE_ROOT)/.secrets/tls/ca.pem:
	cd $(AUTOTRIAGE_ROOT)/services && $(GO) run ./autotriage secrets tls --dir $(AUTOTRIAGE_ROOT)/.secrets/tls

.PHONY: secrets-tls
secrets-tls: $(AUTOTRIAGE_ROOT)/.secrets/tls/ca.pem ## create a local CA and the broker's TLS certificates in .secrets/tls (docker-compose.tls.yml)

.PHONY: up
up: images $(AUTOTRIAGE_ROOT)/.env $(AUTOTRIAGE_ROOT)/.secrets/nats/nkeys.env ## docker compose up: NATS + the three stages (+ simulator and trainer with the demo .env)
	cd $(AUTOTRIAGE_ROOT) && AUTOTRIAGE_IMAGE_TAG='$(VERSION)' $(COMPOSE) up -d --remove-orphans
	@cd $(AUTOTRIAGE_ROOT) && for i in $$(seq 1 60); do \
	  unhealthy=$$($(COMPOSE) ps -q | xargs -r $(DOCKER) inspect --format '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' | grep -v -e ' healthy$$' -e ' exited$$' || true); \
	  [ -z "$$unhealthy" ] && break; sleep 2; done; \
	  $(COMPOSE) ps; [ -z "$$unhealthy" ] || { echo "not healthy yet:"; echo "$$unhealthy"; exit 1; }
	@echo "autotriage is up. Simulator (demo): http://127.0.0.1:8089/_sim/stats  NATS: http://127.0.0.1:8222/jsz"

.PHONY: down
down: ## docker compose down (keeps the NATS volume; DOWN_FLAGS=-v deletes it)
	cd $(AUTOTRIAGE_ROOT) && $(COMPOSE) --profile demo --profile train down --remove-orphans $(DOWN_FLAGS)

.PHONY: e2e
e2e: ## end-to-end tests of the real images with testcontainers (builds the images first; ~15 min)
	@$(MAKE) --no-print-directory -f $(AUTOTRIAGE_ROOT)/deploy/Makefile.mk images SKIP_MISSING=1 VERSION='$(VERSION)' GO='$(GO)' DOCKER='$(DOCKER)'
	cd $(AUTOTRIAGE_ROOT)/tests/e2e && AUTOTRIAGE_E2E_TAG='$(VERSION)' TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=$${TESTCONTAINERS_HOST_OVERRIDE:-127.0.0.1} \
	  $(GO) test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) -run '$(E2E_RUN)' $(E2E_FLAGS) ./...
