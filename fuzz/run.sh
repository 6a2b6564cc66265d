#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS (default 20) from its seed corpus, with libFuzzer via
# cargo fuzz, without sanitizers (-s none: works on the stable toolchain; Rust's own checks
# catch out-of-bounds access, overflow in debug assertions and every panic). A crash stops the
# run with the failing input under fuzz/artifacts/<target>/; make it a regression test, then
# fix it. A longer local run:  FUZZ_SECONDS=1800 bash fuzz/run.sh
# Needs: cargo-fuzz (cargo install cargo-fuzz --locked).
set -uo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1 # cargo fuzz passes nightly-only flags; the stable compiler accepts them so
seconds="${FUZZ_SECONDS:-20}"
command -v cargo-fuzz >/dev/null || { echo "fuzz: cargo-fuzz missing (cargo install cargo-fuzz --locked)" >&2; exit 1; }
cargo fuzz build -s none -O >build.log 2>&1 || { tail -30 build.log; echo "fuzz: build failed" >&2; exit 1; }
passed=0
failed=0
for target in $(cargo fuzz list); do
  # Work on a copy: the seed corpus in git stays small and reviewable.
  work="$(mktemp -d)"
  cp -r "corpus/$target/." "$work/"
  if cargo fuzz run -s none -O "$target" "$work" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
      -max_len=4096 -print_final_stats=1 >"run-$target.log" 2>&1; then
    passed=$((passed + 1))
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "run-$target.log" | grep -o '[0-9]*$')
    echo "ok - fuzz $target: ${runs:-?} inputs in ${seconds}s, no crash"
  else
    failed=$((failed + 1))
    echo "not ok - fuzz $target"
    grep -E 'panicked|ERROR|Test unit written|SUMMARY' "run-$target.log" | head -10 | sed 's/^/    | /'
  fi
  rm -rf "$work"
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
