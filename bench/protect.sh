#!/usr/bin/env bash
# What sealing personal fields costs: the same work with and without a master key, in turns,
# in one run. Import (CSV with a card number on every payment), durable HTTP ingest, decisions
# over HTTP, and SQL scans that read the sealed column in clear, masked, and not at all.
#   bash bench/protect.sh                 # 2M events, 3 rounds
#   EVENTS=10000000 ROUNDS=5 bash bench/protect.sh
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${EVENTS:-2000000}"
ROUNDS="${ROUNDS:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/finpulse/target}"
OUT=bench/out/protect
mkdir -p "$OUT"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release   # SKIP_BUILD=1: the binaries are built already
BIN="$CARGO_TARGET_DIR/release"
export FINPULSE_LOG=warn
KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
CSV="$OUT/payments-$EVENTS.csv"
[ -f "$CSV" ] || "$BIN/finpulse-bench" make-file --events "$EVENTS" --out "$CSV" --with-cards

# Runs "$@" with (sealed) or without (clear) a master key; prints its wall seconds.
timed() {
  local mode="$1"; shift
  local start end
  start=$(date +%s.%N)
  if [ "$mode" = sealed ]; then FINPULSE_MASTER_KEY="$KEY" "$@" >/dev/null 2>&1; else env -u FINPULSE_MASTER_KEY "$@" >/dev/null 2>&1; fi
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "== import of $EVENTS payments with card numbers, $ROUNDS rounds in turns"
: > "$OUT/import.clear"; : > "$OUT/import.sealed"
for r in $(seq "$ROUNDS"); do
  for mode in clear sealed; do
    rm -rf "$OUT/import-$mode"
    timed "$mode" "$BIN/finpulse" import --data-dir "$OUT/import-$mode" "$CSV" >> "$OUT/import.$mode"
  done
done
c=$(median < "$OUT/import.clear"); s=$(median < "$OUT/import.sealed")
echo "import: clear ${c}s, sealed ${s}s (medians), sealed/clear $(echo "scale=3; $s / $c" | bc)"
du -sh "$OUT/import-clear" "$OUT/import-sealed"

echo "== SQL through the server on the imported store, clear and masked readers"
for q in "SELECT count(DISTINCT card_number) FROM payment" "SELECT count(*) FROM payment WHERE card_number LIKE '6222%'" "SELECT count(*), sum(amount_fen) FROM payment"; do
  for mode in clear sealed; do
    if [ "$mode" = sealed ]; then export FINPULSE_MASTER_KEY="$KEY"; else unset FINPULSE_MASTER_KEY; fi
    echo "$mode store: $("$BIN/finpulse-bench" --finpulse "$BIN/finpulse" sql-masking --data-dir "$OUT/import-$mode" --repeat 5 "$q" | tail -n1)  [$q]"
  done
done
unset FINPULSE_MASTER_KEY

echo "== durable HTTP ingest, batches of 1,000 (each its own fresh store)"
for mode in clear sealed; do
  if [ "$mode" = sealed ]; then export FINPULSE_MASTER_KEY="$KEY"; else unset FINPULSE_MASTER_KEY; fi
  echo "$mode: $("$BIN/finpulse-bench" --finpulse "$BIN/finpulse" --scratch "$OUT" ingest-http --batch 1000 --connections 8 --seconds 10 | tail -n1)"
done
unset FINPULSE_MASTER_KEY

echo "== decisions over HTTP at 5,000/s"
for mode in clear sealed; do
  if [ "$mode" = sealed ]; then export FINPULSE_MASTER_KEY="$KEY"; else unset FINPULSE_MASTER_KEY; fi
  echo "$mode: $("$BIN/finpulse-bench" --finpulse "$BIN/finpulse" --scratch "$OUT" decide-http --rate 5000 --seconds 6 | head -n1)"
done
