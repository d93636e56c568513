#!/usr/bin/env bash
# The console's speed as a user gets it: a release server on demo data, Debian's Chromium
# driven by the console's own browser test (crates/finpulse-console/web/e2e/console.mjs),
# which prints how long the sign-in page took and each insight took to draw, in both
# languages; and the bundle's size with brotli.
#   bash bench/console.sh [USERS [DAYS]]   (default 100000 users over 90 days)
# Needs a release build (cargo build --release --bin finpulse), Node.js and /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-100000}
DAYS=${2:-90}
TARGET=${CARGO_TARGET_DIR:-target}
FINPULSE=$TARGET/release/finpulse
WEB=$(ls -dt "$TARGET"/release/build/finpulse-console-*/out/web 2>/dev/null | head -1)
[ -x "$FINPULSE" ] && [ -d "$WEB/node_modules" ] || { echo "console bench: build first: cargo build --release --bin finpulse" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'kill "${PID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
START=$(date +%s)
"$FINPULSE" demo --users "$USERS" --days "$DAYS" --no-serve --data-dir "$WORK/data" 2>/dev/null | tail -2
echo "demo data made in $(( $(date +%s) - START )) s"
echo 'console bench passphrase' | "$FINPULSE" users create --name bench --role admin --password-stdin --data-dir "$WORK/data" >/dev/null 2>&1
KEY=$("$FINPULSE" keys create --role admin --data-dir "$WORK/data" 2>/dev/null | tail -1)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
FINPULSE_LOG=warn "$FINPULSE" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" >/dev/null 2>&1 &
PID=$!
BASE="http://127.0.0.1:$PORT"
# Timed once the server has filled its insight caches, as a user meets it later.
for _ in $(seq 1 600); do
  curl -sf "$BASE/healthz" | grep -q '"warming":false' && break
  sleep 0.5
done
# Two cases for the case-queue check.
curl -sf -X POST "$BASE/v1/rules" -H "Authorization: Bearer $KEY" --data-binary $'name = "cards"\nreview_at = 0.5\nblock_at = 0.95\n[[rule]]\nname = "large"\nwhen = "payment.amount_fen > 500000"\nscore = 0.7\naction = "review"\n' >/dev/null
for i in 1 2; do
  curl -sf -X POST "$BASE/v1/decisions" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
    -d "{\"event_id\":\"bench-$i\",\"user_id\":\"u-e2e-$i\",\"ts\":\"2026-03-30T10:00:00+08:00\",\"type\":\"payment\",\"amount_fen\":900000,\"currency\":\"CNY\",\"terminal_id\":\"t1\"}" >/dev/null
done
(cd "$WEB" && FINPULSE_BASE="$BASE" FINPULSE_USER=bench FINPULSE_PASSWORD='console bench passphrase' FINPULSE_SHOTS="$WORK/shots" node e2e/console.mjs)
for f in "$WEB"/../dist/assets/*.js; do
  echo "bundle: $(basename "$f") $(stat -c %s "$f") bytes, $(stat -c %s "$f.br") with brotli"
done
