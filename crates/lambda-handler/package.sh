#!/usr/bin/env bash
# Builds the fraud-check function for Lambda's provided.al2023 runtime and packages it as
# bootstrap.zip with the executable `bootstrap` at the zip root.
#
#   crates/lambda-handler/package.sh [OUTPUT_ZIP]
#
# OUTPUT_ZIP defaults to ${CARGO_TARGET_DIR:-<repo>/target}/lambda/bootstrap.zip; the path
# is printed on the last line. PROFILE=debug packages a debug build instead of release.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
profile="${PROFILE:-release}"
output="${1:-$target_dir/lambda/bootstrap.zip}"

cd "$repo"
if [[ "$profile" == "release" ]]; then
    cargo build --release -p lambda-handler --bin bootstrap >&2
    binary="$target_dir/release/bootstrap"
else
    cargo build -p lambda-handler --bin bootstrap >&2
    binary="$target_dir/debug/bootstrap"
fi

mkdir -p "$(dirname "$output")"
rm -f "$output"
if command -v zip >/dev/null 2>&1; then
    # -j: store the file at the zip root, whatever its path here.
    zip -j -q "$output" "$binary"
else
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
echo "fraud-check packaged ($profile): $output" >&2
echo "$output"
