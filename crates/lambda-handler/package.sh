#!/usr/bin/env bash
# Builds one of the crate's functions for Lambda's provided.al2023 runtime and packages it
# as a zip with the executable `bootstrap` at its root.
#
#   crates/lambda-handler/package.sh [OUTPUT_ZIP]
#
# FUNCTION=fraud-check (the default; binary `bootstrap`, zip bootstrap.zip) or
# FUNCTION=fulfilment (binary `fulfilment`, zip fulfilment.zip). OUTPUT_ZIP defaults to
# ${CARGO_TARGET_DIR:-<repo>/target}/lambda/<zip>; the path is printed on the last line.
# PROFILE=debug packages a debug build instead of release; BOOTSTRAP=<path> packages a
# binary built already (the Dockerfile's shared build).
#
# Before zipping, the binary's glibc symbol versions are checked against provided.al2023's
# glibc (2.34; LAMBDA_GLIBC override): a binary linked on a newer distribution can need
# symbols that runtime lacks, and then fails on its first invocation with "version
# `GLIBC_2.xx' not found", which no local test would show.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
profile="${PROFILE:-release}"
function="${FUNCTION:-fraud-check}"
case "$function" in
    fraud-check) bin=bootstrap zip_name=bootstrap.zip ;;
    fulfilment) bin=fulfilment zip_name=fulfilment.zip ;;
    *)
        echo "error: FUNCTION=$function: this crate's functions are fraud-check and fulfilment" >&2
        exit 1
        ;;
esac
output="${1:-$target_dir/lambda/$zip_name}"

cd "$repo"
if [[ -n "${BOOTSTRAP:-}" ]]; then
    binary="$BOOTSTRAP"
    profile="prebuilt"
elif [[ "$profile" == "release" ]]; then
    cargo build --release -p lambda-handler --bin "$bin" >&2
    binary="$target_dir/release/$bin"
else
    cargo build -p lambda-handler --bin "$bin" >&2
    binary="$target_dir/debug/$bin"
fi
[[ -f "$binary" ]] || {
    echo "error: no binary at $binary" >&2
    exit 1
}

bash "$repo/crates/lambda-handler/check-glibc.sh" "$binary" >&2

mkdir -p "$(dirname "$output")"
rm -f "$output"
if command -v zip >/dev/null 2>&1 && [[ "$(basename "$binary")" == bootstrap ]]; then
    # -j: store the file at the zip root, whatever its path here.
    zip -j -q "$output" "$binary"
else
    # Stored as `bootstrap` whatever the binary's file name.
    python3 - "$binary" "$output" <<'PY'
import sys, zipfile
binary, output = sys.argv[1], sys.argv[2]
info = zipfile.ZipInfo("bootstrap")
info.external_attr = 0o100755 << 16  # a regular executable file, as Lambda needs
info.compress_type = zipfile.ZIP_DEFLATED
with open(binary, "rb") as f, zipfile.ZipFile(output, "w") as z:
    z.writestr(info, f.read())
PY
fi
echo "$function packaged ($profile): $output" >&2
echo "$output"
