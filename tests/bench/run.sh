#!/usr/bin/env bash
# Benchmark the warm `get` against the floor program, in one run.
# Usage: bash tests/bench/run.sh            (BENCH_RUNS=300 by default)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet --example floor --bin docker-credential-acr
FLOOR_BIN="$PWD/target/release/examples/floor" cargo bench --quiet --bench warm_get
