# otel-lab: the two commands are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
RELEASE := $(TARGET_DIR)/release
DEBUG := $(TARGET_DIR)/debug

# Passed to the load generator: make traffic ARGS="--scenario failures --duration 1m"
ARGS ?=

.PHONY: help run build test test-build fuzz lint fmt clippy traffic lambda-zip bench validate-configs metrics-lint metrics-e2e

help:
	@echo "make run          build and start the whole lab as local processes (Ctrl-C stops it)"
	@echo "make workshop     the lab for the workshop (docs/workshop/README.md); GATEWAY=FILE for your gateway config"
	@echo "make traffic      send realistic traffic to the running lab (ARGS=\"--help\" for options)"
	@echo "make test         formatting, lints and every test"
	@echo "make lambda-zip   build bootstrap.zip (fraud-check) and fulfilment.zip for AWS Lambda (provided.al2023)"
	@echo "make bench        collector benchmarks and what telemetry costs a service"
	@echo "make fuzz         bounded fuzzing of OTLP decoding and config parsing (FUZZ_SECONDS=60)"
	@echo "make setup        the lab on Kind + LocalStack (docs/kind.md); make status, make logs SERVICE=...,"
	@echo "                  make jaeger, make grafana; make teardown removes it"

build:
	$(CARGO) build --release --workspace --bins

run: build
	$(RELEASE)/lab up

# The lab for the workshop (docs/workshop/): `make run` with the planted problems switched on
# (lab up --workshop passes each workload its FAULT_SCENARIOS; `lab fault` switches them off),
# and the second backend of modules 13 and 15. GATEWAY=FILE runs the gateway with that config
# instead of the lab's (make workshop GATEWAY=workshop/gateway.yaml).
.PHONY: workshop
workshop: build
	$(RELEASE)/lab up --workshop $(if $(GATEWAY),--gateway-config $(GATEWAY))

traffic:
	@test -x $(RELEASE)/traffic || $(CARGO) build --release -p traffic
	$(RELEASE)/traffic $(ARGS)

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Tests, the binaries they start and the lints all use one debug build: building one crate
# alone would resolve other dependency features and compile everything a second time.
test-build:
	$(CARGO) test --workspace --no-run

validate-configs: test-build
	@for f in crates/collector/configs/*/*.yaml; do \
		echo "collector validate --config $$f"; \
		$(DEBUG)/collector validate --config $$f || exit 1; \
	done

# Prometheus configs, rules and their unit tests, Grafana provisioning and dashboards.
metrics-lint:
	python3 tests/metrics/lint.py

# Every dashboard query answered by a real Prometheus scraping a real lab under traffic.
metrics-e2e: test-build
	python3 tests/metrics/test_dashboards.py --bin-dir $(DEBUG)

lint: fmt clippy validate-configs metrics-lint kind-lint kind-test

test: lint
	$(CARGO) test --workspace
	$(MAKE) metrics-e2e

lambda-zip:
	bash crates/lambda-handler/package.sh
	FUNCTION=fulfilment bash crates/lambda-handler/package.sh

# The collector's throughput and its trace store's memory and latencies, then what telemetry
# costs a workload (in process, and the release inventory-service pinned to one core with
# telemetry off and on).
bench:
	$(CARGO) bench -p collector --bench pipeline
	$(CARGO) bench -p collector --bench trace_store
	$(CARGO) bench -p telemetry --bench request
	$(CARGO) bench -p inventory-service --bench telemetry_cost

# Bounded fuzzing of OTLP protobuf/JSON decoding and config parsing (FUZZ_SECONDS per target).
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP lets the stable toolchain provide them.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := otlp_protobuf otlp_json config
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(TARGET_DIR)/fuzz-corpus/$$t; \
		echo "fuzzing $$t for $(FUZZ_SECONDS)s"; \
		(cd crates/collector/fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t \
			$(TARGET_DIR)/fuzz-corpus/$$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048) || exit 1; \
	done

# The Kind + LocalStack lab (docs/kind.md). Images are tagged <workspace version> and
# <workspace version>-<image id>; the lab runs the second (scripts/lib.sh image_tag).
VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
SERVICE ?=

.PHONY: setup status logs jaeger grafana teardown images kind-configs kind-lint kind-test

images:
	VERSION=$(VERSION) scripts/images.sh

setup:
	VERSION=$(VERSION) scripts/setup.sh

status:
	scripts/status.sh

logs:
	scripts/logs.sh "$(SERVICE)"

jaeger:
	@scripts/urls.sh jaeger

grafana:
	@scripts/urls.sh grafana

teardown:
	scripts/teardown.sh

# Copies the Prometheus and Grafana files of the Kind lab into k8s/generated/, so that
# `kubectl apply -k k8s` works as typed (make setup does this too; kind-lint checks it).
kind-configs:
	scripts/sync-kind-configs.sh

# Static checks of k8s/, the Dockerfile and the lab scripts (no Docker needed).
kind-lint:
	CARGO_TARGET_DIR=$(TARGET_DIR) python3 scripts/kind_lint.py

# make setup / status / logs / teardown end to end against stand-ins for docker, kind,
# kubectl, aws and awslocal that answer as the real tools do (tests/kind/, no Docker needed).
# The fake cargo hands out the real Lambda binary of the debug build (test-build).
kind-test: test-build
	CARGO_TARGET_DIR=$(TARGET_DIR) python3 tests/kind/run.py
