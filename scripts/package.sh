#!/usr/bin/env bash
# Builds the Debian package: release binary, man pages and bash completions, then cargo-deb.
# Usage: scripts/package.sh   (prints the path of the .deb)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version 3.8.0
cargo build --release --locked
mkdir -p target/release/completions
rm -rf target/release/man
target/release/directd man --dir target/release/man
target/release/directd completions bash > target/release/completions/directd.bash
cargo deb --no-build --locked 2>&1 | tail -1
