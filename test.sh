#!/usr/bin/env bash
# Runs every gate: formatting, clippy with warnings as errors, and all tests.
# Usage: ./test.sh            (what CI runs)
set -euo pipefail
cd "$(dirname "$0")"

# Rust toolchain: rust-toolchain.toml pins the version; rustup installs it on first use.
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install rustup (https://rustup.rs) first" >&2
  exit 1
fi

# Build output is cached outside the work tree so a fresh clone on a warm machine reuses it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/logstream/target}"
export CARGO_TERM_COLOR=never

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked
