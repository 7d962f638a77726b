#!/usr/bin/env bash
# Checks that an ELF binary needs no glibc symbol version newer than the Lambda runtime's.
#
#   crates/lambda-handler/check-glibc.sh BINARY
#
# provided.al2023 is Amazon Linux 2023, glibc 2.34 (LAMBDA_GLIBC overrides). The versions
# are those the binary's .gnu.version_r section names for libc, libm, libpthread...
# (readelf --version-info, binutils); the newest must be at most the runtime's. Exits 1,
# naming the newest version and what needs it, when it is newer.
set -euo pipefail

binary="${1:?usage: check-glibc.sh BINARY}"
limit="${LAMBDA_GLIBC:-2.34}"
command -v readelf >/dev/null 2>&1 || {
    echo "error: readelf (binutils) is needed to check $binary's glibc symbol versions" >&2
    exit 1
}
info="$(readelf --version-info --wide "$binary")" || {
    echo "error: readelf cannot read $binary (not an ELF binary?)" >&2
    exit 1
}
# Every GLIBC_x.y[.z] named, sorted by version (numerically: 2.4 < 2.34).
versions="$(printf '%s\n' "$info" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' |
    sort -u -t. -k1,1n -k2,2n -k3,3n)"
if [[ -z "$versions" ]]; then
    echo "error: $binary names no glibc symbol version: not a dynamically linked glibc binary?" >&2
    exit 1
fi
newest="$(printf '%s\n' "$versions" | tail -n1)"
# The newer of the two, in the same order.
newer="$(printf '%s\n%s\n' "$newest" "$limit" | sort -t. -k1,1n -k2,2n -k3,3n | tail -n1)"
if [[ "$newer" != "$limit" ]]; then
    echo "error: $binary needs GLIBC_$newest, newer than Lambda's provided.al2023 (glibc $limit); the symbols that need it:" >&2
    # In the dynamic symbol table each symbol is printed with its version (name@GLIBC_x.y).
    readelf --dyn-syms --wide "$binary" | grep -o "[^ ]*@GLIBC_$newest" | sort -u | sed 's/^/  /' >&2 || true
    echo "build it where glibc is older, e.g. in the Dockerfile's Debian 12 stage: docker build --target lambda-zip --output type=local,dest=target/lambda ." >&2
    exit 1
fi
echo "glibc check: $(basename "$binary") needs at most GLIBC_$newest (Lambda provided.al2023 has $limit)"
