#!/usr/bin/env bash
# `make images`: builds otel-lab/<bin>:<version> for every lab binary from the one
# Dockerfile and tags each build otel-lab/<bin>:<version>-<image id> as well (image_tag in
# lib.sh), the tag the lab runs. The Dockerfile compiles every binary in one shared layer,
# so the second and later images are a copy out of it.
#
# --provenance=false --sbom=false: no attestation manifests. BuildKit attaches a provenance
# attestation by default, and with the containerd image store (Docker Engine 29, Docker
# Desktop) `docker save` then writes an index naming a manifest it leaves out, which the
# Kind node cannot import. Provenance also records the build's time, which would change
# the image id, and so the tag, on every run even when nothing changed.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

for bin in "${IMAGES[@]}"; do
    say "docker build otel-lab/$bin:$VERSION"
    docker build --provenance=false --sbom=false --build-arg "BIN=$bin" \
        --tag "otel-lab/$bin:$VERSION" "$REPO"
    tag="$(image_tag "$bin")"
    docker tag "otel-lab/$bin:$VERSION" "otel-lab/$bin:$tag"
    say "otel-lab/$bin:$tag"
done
