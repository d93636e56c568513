#!/usr/bin/env bash
# Runs finpulse's benchmarks side by side with their peers and physical limits, in one run.
#   bash bench/run.sh            # all, 10M events
#   EVENTS=1000000 bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${EVENTS:-10000000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/finpulse/target}"
OUT=bench/out
mkdir -p "$OUT"
# The whole workspace, so features unify the same way as in the tests (no second DataFusion build).
cargo build --release
BIN="$CARGO_TARGET_DIR/release"
# The peers, installed from PyPI into one environment outside the repository on first use.
PY="$(bash tools/reference-python.sh duckdb lifetimes lightgbm sklearn pandas chdb numpy pyarrow)"

echo "== funnel and retention against ClickHouse (chdb) and DuckDB on the same Parquet file"
for n in ${BEHAVIOUR_EVENTS:-10000000 100000000}; do
  "$PY" bench/behaviour.py "$BIN/finpulse-bench" "$OUT" "$n" 3
done

echo "== every insight over HTTP on the demo's data at ${INSIGHT_USERS:-100000} users (first answer after start, median of 5)"
DEMO="$OUT/demo-${INSIGHT_USERS:-100000}"
if [ ! -f "$DEMO/manifest.json" ]; then
  "$BIN/finpulse" demo --users "${INSIGHT_USERS:-100000}" --no-serve --data-dir "$DEMO"
fi
"$BIN/finpulse-bench" --finpulse "$BIN/finpulse" insights --data-dir "$DEMO" --repeat 5

echo "== disk (physical limit for durable ingest)"
"$BIN/finpulse-bench" --scratch "$OUT" disk --mib 512 --block-kib 1024
"$BIN/finpulse-bench" --scratch "$OUT" disk --mib 64 --block-kib 256

echo "== log commits: into zeroed space against extending the file"
"$BIN/finpulse-bench" --scratch "$OUT" wal-commit --rounds 4

echo "== map growth: the longest insert of one HashMap against a ShardedMap"
"$BIN/finpulse-bench" map-growth --entries 1000000 --rounds 5

echo "== durable HTTP ingest, batches of 1,000"
"$BIN/finpulse-bench" --finpulse "$BIN/finpulse" --scratch "$OUT" ingest-http --batch 1000 --connections 8 --seconds 15

echo "== risk decisions in process: ${DECIDE_USERS:-1000000} users in live state, a GBDT and 4 rules"
"$BIN/finpulse-bench" decide --users "${DECIDE_USERS:-1000000}" --decisions 200000

echo "== risk decisions over HTTP at fixed rates (open loop), separate load-generating process"
for rate in 2500 5000 20000; do
  "$BIN/finpulse-bench" --finpulse "$BIN/finpulse" --scratch "$OUT" decide-http --rate "$rate" --seconds 5 2>/dev/null
done

echo "== file import of $EVENTS events"
FILE="$OUT/payments-$EVENTS.csv"
[ -f "$FILE" ] || "$BIN/finpulse-bench" make-file --events "$EVENTS" --out "$FILE"
rm -rf "$OUT/import"
start=$(date +%s.%N)
FINPULSE_LOG=warn "$BIN/finpulse" import --data-dir "$OUT/import" "$FILE"
end=$(date +%s.%N)
python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'import: {int(sys.argv[3])/s:,.0f} events/s end to end ({s:.1f} s, including the final compaction to Parquet)')" "$start" "$end" "$EVENTS"

echo "== count by type over $EVENTS events: finpulse vs DuckDB, same Parquet files"
Q="SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY n DESC"
F=$("$BIN/finpulse-bench" sql --data-dir "$OUT/import" --repeat 7 "$Q")
D=$("$PY" bench/duckdb_scan.py "$OUT/import" 7 "$Q")
echo "$F"; echo "$D"
python3 - "$F" "$D" "$EVENTS" <<'PY'
import json, sys
f, d, n = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
print(f"scan: finpulse {n/f['median_secs']/1e6:,.1f} M events/s, DuckDB {d['version']} {n/d['median_secs']/1e6:,.1f} M events/s; finpulse/DuckDB time ratio {f['median_secs']/d['median_secs']:.2f}")
PY

echo "== LTV fits: finpulse vs lifetimes, same synthetic customers (${LTV_CUSTOMERS:-1000000})"
"$PY" bench/ltv_fits.py "$BIN/finpulse" "$OUT" "${LTV_CUSTOMERS:-1000000}"

echo "== classifiers: finpulse GBDT vs LightGBM (quality on two public tables; speed on ${GBDT_ROWS:-1000000} rows x 30 features)"
"$PY" bench/gbdt_compare.py "$BIN/finpulse" "$OUT" "${GBDT_ROWS:-1000000}"

echo "== fraud on data finpulse did not simulate: the handbook's transactions, and a third world"
if [ -f "$OUT/handbook/payments.parquet" ]; then
  "$PY" bench/fraud_handbook.py run "$BIN/finpulse" "$OUT/handbook"
else
  echo "skipped the handbook's data: convert it once into $OUT/handbook (README, 'Reference')"
fi
[ -f "$OUT/fraud-world/payments.parquet" ] || "$PY" bench/fraud_world.py generate "$OUT/fraud-world"
"$PY" bench/fraud_world.py run "$BIN/finpulse" "$OUT/fraud-world"
