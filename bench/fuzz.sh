#!/usr/bin/env bash
# Fuzzes the parsers that read outside bytes (the log's event decoder, the CSV file reader, the
# rules language and ruleset files) for a fixed time each, from the seeds in fuzz/seeds/.
#   bash bench/fuzz.sh                         # every target, 60 s each
#   FUZZ_SECONDS=600 bash bench/fuzz.sh rules_parser
# Exits non-zero when a target finds a crash, a timeout or an out-of-memory, naming the
# reproducer (replay it with `cargo fuzz run <target> <file>` from the repository root).
# cargo fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${FUZZ_SECONDS:-60}"
CARGO_FUZZ_VERSION=0.13.2
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(event_decoder csv_reader rules_parser)
export RUSTC_BOOTSTRAP=1
# Its own build directory: instrumented builds would otherwise evict the main build's cache.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/finpulse/fuzz-target}"
# AddressSanitizer by default; FUZZ_SANITIZER=none where its runtime is missing.
SANITIZER="${FUZZ_SANITIZER:-address}"

if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
# The same dependency versions as the workspace's own builds and tests.
cp Cargo.lock fuzz/Cargo.lock

failed=()
for t in "${TARGETS[@]}"; do
  echo "== $t for ${SECONDS_EACH} s"
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  touch "fuzz/artifacts/$t/.since"
  # One process (the machine's other work keeps its cores). New inputs go to fuzz/corpus/,
  # ignored by git; the seeds are read, never written. Crashes go to fuzz/artifacts/.
  if ! cargo fuzz run --sanitizer "$SANITIZER" --debug-assertions "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  for t in "${failed[@]}"; do
    echo "FAILED: $t; reproducers:" >&2
    find "fuzz/artifacts/$t" -type f -newer "fuzz/artifacts/$t/.since" -printf '  %p\n' >&2
  done
  exit 1
fi
echo "no crashes, timeouts or out-of-memory in ${TARGETS[*]}"
