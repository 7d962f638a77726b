# syntax=docker/dockerfile:1
# One image per binary of the workspace, for the Kind lab (k8s/) and the containers beside it
# (scripts/). `make images` builds otel-lab/<bin>:<version> for collector, order-service,
# payment-service and inventory-service:
#
#   docker build --build-arg BIN=order-service -t otel-lab/order-service:0.1.0 .
#
# Dependencies are compiled in their own layer (cargo-chef: a recipe of the manifests only),
# so editing the lab's code rebuilds only the lab's crates. Then every binary of the
# workspace is compiled in one layer that does not depend on BIN, so the four images share
# it: the first `make images` build compiles, the other three copy their binary out.
# `cargo chef cook` and `cargo build` select the same packages and targets (`--workspace
# --bins`): Cargo unifies dependency features over what is selected, so building one binary
# (`--bin X`) would resolve other features than the cooked layer and recompile much of it.
# `make kind-lint` checks both stay the same.
# The Lambda package is a stage too, for hosts whose cargo cannot build a Linux binary:
#
#   docker build --target lambda-zip --output type=local,dest=target/lambda .

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The recipe changes only when a Cargo.toml or Cargo.lock does.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS dependencies
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --workspace --bins --recipe-path recipe.json

FROM dependencies AS builder
COPY . .
RUN cargo build --release --workspace --bins

# The Lambda functions (fraud-check, fulfilment) for the provided.al2023 runtime (glibc
# 2.34; package.sh checks the binaries' glibc symbol versions). The binaries come from the
# shared build above.
FROM builder AS lambda-build
RUN BOOTSTRAP=target/release/bootstrap bash crates/lambda-handler/package.sh /out/bootstrap.zip \
 && FUNCTION=fulfilment BOOTSTRAP=target/release/fulfilment bash crates/lambda-handler/package.sh /out/fulfilment.zip

FROM scratch AS lambda-zip
COPY --from=lambda-build /out/bootstrap.zip /out/fulfilment.zip /

# One binary out of the shared build. BIN is declared only from here on, so the layers
# above are the same for every image; this one is a copy.
FROM builder AS binary
ARG BIN
RUN test -n "${BIN}" || { echo "pass --build-arg BIN=<collector|order-service|payment-service|inventory-service>" >&2; exit 1; }
RUN mkdir -p /out && cp "target/release/${BIN}" /out/app

# glibc and libgcc, nothing else: no shell, no package manager. `nonroot` runs as 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG BIN
LABEL org.opencontainers.image.title="otel-lab ${BIN}" \
      org.opencontainers.image.source="otel-lab" \
      org.opencontainers.image.description="otel-lab ${BIN} (see docs/kind.md)"
COPY --from=binary /out/app /usr/local/bin/app
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/app"]
