#!/bin/sh
# Rebuilds the seed corpora fuzz/corpus/<target>/ from the request scripts of the differential
# tests (tests/differential/cases_*.rs): fuzz/seed/main.rs compiles those files in and writes
# each script where it fits (see there). Needs only rustc.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/target"
rustc --edition 2021 -O -A warnings -o "$here/target/seed-gen" "$here/seed/main.rs"
rm -rf "$here/corpus"
"$here/target/seed-gen" "$here/corpus"
