#!/usr/bin/env bash
# Builds otel-lab/<bin>:<version> for every lab binary from the one Dockerfile. The
# dependency layers are shared, so the second and later images build only their crate.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

for bin in "${IMAGES[@]}"; do
    say "docker build otel-lab/$bin:$VERSION"
    docker build --build-arg "BIN=$bin" --tag "otel-lab/$bin:$VERSION" "$REPO"
done
