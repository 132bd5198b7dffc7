#!/usr/bin/env bash
# Runs every gate: formatting, clippy with warnings as errors, and all tests, including those
# against the real parts (Kubernetes control plane + kwok, Kafka, S3, Helm) that ./e2e/env
# builds, caches under ~/.cache/logstream-testinfra and starts on loopback.
# Usage: ./test.sh            (what CI runs)
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v cargo >/dev/null; then
  echo "cargo not found: install rustup (https://rustup.rs) first" >&2
  exit 1
fi

# Build output is cached outside the work tree so a fresh clone on a warm machine reuses it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/logstream/target}"
export CARGO_TERM_COLOR=never

echo "== cargo fmt --check"
cargo fmt --all -- --check

# The real parts come first: `up` also installs the system packages the Rust build needs
# (cmake, a C++ compiler and curl headers for the bundled librdkafka).
echo "== ./e2e/env up"
./e2e/env up
trap './e2e/env down' EXIT

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
# REQUIRE_E2E=1: a test that needs a real part fails when the part is missing, never skips.
REQUIRE_E2E=1 ./e2e/env run -- cargo test --workspace --locked
