#!/usr/bin/env bash
# Benchmark the warm `get` against the floor program, in one run.
# Usage: bash tests/bench/run.sh            (BENCH_RUNS=300 by default)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet --example floor --bin docker-credential-acr --bin docker-credential-acr-full
# Where cargo put it (CARGO_TARGET_DIR and build.target-dir move it from ./target).
target_dir="$(cargo metadata --format-version 1 --no-deps --locked |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
FLOOR_BIN="$target_dir/release/examples/floor" cargo bench --quiet --bench warm_get
