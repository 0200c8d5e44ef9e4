# cloudops.ecr_replication — everything a fresh Debian/Ubuntu machine needs, installed here.
#   make demo   start the local sandbox and run the main job against it
#   make test   unit + sandbox integration tests, ansible-lint, ansible-test sanity
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV        ?= .venv
BIN         := $(VENV)/bin
APT_PACKAGES := skopeo docker-registry jq git shellcheck
# The newest Python >= 3.12 wins (ansible-core 2.20+); 3.11 falls back to ansible-core 2.19.
PYTHON_CANDIDATES := python3.13 python3.12 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3) \
                     $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3) python3.11 python3
PYTHON      ?= $(shell for p in $(PYTHON_CANDIDATES); do command -v $$p >/dev/null 2>&1 && \
                 $$p -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null && { command -v $$p; exit 0; }; done; \
                 for p in python3.11 python3; do command -v $$p >/dev/null 2>&1 && { command -v $$p; exit 0; }; done)
PYTEST_ARGS ?=
COLLECTION_ROOT := $(CURDIR)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.ansible/collections
export ANSIBLE_LOCAL_TEMP := $(CURDIR)/.ansible/tmp

.PHONY: help deps apt-deps venv collection sandbox sandbox-down demo test unit integration lint sanity \
        molecule changelog-lint buildspec benchmark bench soak clean

help:
	@echo "make demo          start the sandbox and run the replication flow against it"
	@echo "make test          unit + integration tests, ansible-lint, ansible-test sanity"
	@echo "make sandbox       start the local AWS sandbox in the background (writes .sandbox/env)"
	@echo "make sandbox-down  stop every process the sandbox started"
	@echo "make benchmark     long benchmarks (large catalog); not part of make test"
	@echo "make bench         codebuild vs local vs skopeo sync vs the seed -> bench/results (BENCH_PROFILE=small: ~2 min)"
	@echo "make soak          the slow cases (@pytest.mark.slow): every fault at once over the whole catalog, ..."
	@echo "make buildspec     regenerate buildspec.yml from plugins/module_utils/replicator.py"

deps: apt-deps venv collection

apt-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing — install them with: sudo apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi

# --no-compile: byte-compiling every file of the ansible package (all its bundled collections) takes a minute of
# CPU; Python compiles what is imported, on first use.
$(BIN)/.installed: requirements.txt
	@test -n "$(PYTHON)" || { echo "no python3 found: install python3 and python3-venv" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; v=sys.version_info; print(f"using Python {v.major}.{v.minor} ($(PYTHON))"); \
	  (v < (3, 12)) and print("notice: Python < 3.12 found, falling back to ansible-core 2.19 (ansible 12.x)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --no-compile --disable-pip-version-check -r requirements.txt
	@touch $@

venv: $(BIN)/.installed

# ansible-test and playbooks need the collection at ansible_collections/cloudops/ecr_replication:
# link the work tree there, and the amazon.aws/community.aws bundled with the ansible package beside it.
collection: venv
	@mkdir -p $(ANSIBLE_COLLECTIONS_PATH)/ansible_collections/cloudops $(ANSIBLE_LOCAL_TEMP)
	@ln -sfn $(CURDIR) $(ANSIBLE_COLLECTIONS_PATH)/ansible_collections/cloudops/ecr_replication

# Started, seeded and provisioned (provision.yml), so that after `source .sandbox/env` the README's
# `ansible-playbook playbooks/replicate.yml -e dest_region=... -e dest_account=...` works as typed.
sandbox: deps
	@$(BIN)/python -m tests.sandbox start --profile small
	@set -a; source .sandbox/env; set +a; \
	  ansible-playbook playbooks/provision.yml -e dest_region="$$SANDBOX_DEST_REGION" \
	    -e dest_account="$$SANDBOX_TARGET_ACCOUNT" -e dest_profile=target -e all_repositories=true \
	    > .sandbox/provision.log 2>&1 || { tail -n 30 .sandbox/provision.log; exit 1; }
	@echo "sandbox is up and provisioned: source .sandbox/env"

sandbox-down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m tests.sandbox stop; else echo "no sandbox running"; fi

# A fresh sandbox each time, so the demo always starts from the seeded catalog.
demo: deps
	@$(BIN)/python -m tests.sandbox stop >/dev/null
	@$(BIN)/python -m tests.sandbox start --profile small
	@bash tests/sandbox/demo.sh

unit: deps
	@$(BIN)/python -m pytest -q tests/unit $(PYTEST_ARGS)

integration: deps
	@$(BIN)/python -m pytest -q tests/integration $(PYTEST_ARGS)

lint: deps
	@bash tests/lint.sh

sanity: deps
	@bash tests/sanity.sh

test: deps
	@bash tests/run_tests.sh

# buildspec.yml is generated from plugins/module_utils/replicator.py (a unit test checks they agree).
buildspec: collection
	@PYTHONPATH=$(ANSIBLE_COLLECTIONS_PATH) $(BIN)/python -m \
	  ansible_collections.cloudops.ecr_replication.plugins.module_utils.replicator > buildspec.yml.new \
	  || { rm -f buildspec.yml.new; exit 1; }
	@mv buildspec.yml.new buildspec.yml
	@echo "buildspec.yml regenerated"

benchmark: deps
	@$(BIN)/python -m pytest -q tests/benchmarks -s $(PYTEST_ARGS)

# The slow cases make test leaves out (@pytest.mark.slow): the fault soak (tests/integration/faults) and the other
# long runs, on a private sandbox (tests/conftest.py) unless SANDBOX_TEST_DIR names a running one.
soak: deps
	@SANDBOX_CODEBUILD_MINUTE_SECONDS=$${SANDBOX_CODEBUILD_MINUTE_SECONDS:-5} \
	  $(BIN)/python -m pytest -q -m slow -p no:cacheprovider tests/integration $(PYTEST_ARGS)

# Not part of make test: the large profile takes 10-20 minutes on 2 cores. Sandbox ports 27000-27099.
BENCH_PROFILE ?= large
bench: deps
	@$(BIN)/python tests/benchmarks/bench.py --profile $(BENCH_PROFILE) $(if $(BENCH_OVERHEAD),,--no-overhead)

clean: sandbox-down
	rm -rf $(VENV) .ansible .pytest_cache build context
