#!/usr/bin/env bash
# Measures finpulse-federation in one run: Paillier against python-paillier (phe, with gmpy2)
# at the same key size, PSI against a plaintext hash join, and vertical LR and SecureBoost on
# the UCI credit table (seconds per epoch / per tree, held-out AUC of federated, central and
# guest-only models), encrypted and with the plaintext stand-in.
#   tools/federation-bench.sh [paillier|psi|lr|boost|all]
# Knobs: BITS (2048), OPS (100), PSI_IDS (1000000), LR_EPOCHS (1), LR_PLAIN_EPOCHS (5),
# BOOST_TREES (1), BOOST_PLAIN_TREES (20).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/finpulse/target}"
what="${1:-all}"
BITS="${BITS:-2048}"
DATA=testdata/uci-default-credit-card.csv
cargo build --workspace --bins >&2
BIN="$CARGO_TARGET_DIR/debug/federation-bench"
echo "# $(nproc) cores; federation-bench built with the dev profile (opt-level 2 for this crate and its dependencies)"

if [ "$what" = paillier ] || [ "$what" = all ]; then
  PY="$(tools/reference-python.sh phe gmpy2)"
  ours="$(mktemp)"; theirs="$(mktemp)"
  trap 'rm -f "$ours" "$theirs"' EXIT
  "$BIN" paillier --bits "$BITS" --ops "${OPS:-100}" | tee "$ours"
  "$PY" tools/federation_phe.py --bits "$BITS" --ops "${OPS:-100}" | tee "$theirs"
  "$PY" - "$ours" "$theirs" <<'PY'
import json, sys
ours = {r["op"]: r for r in map(json.loads, open(sys.argv[1]))}
theirs = {r["op"]: r for r in map(json.loads, open(sys.argv[2]))}
print("| operation | finpulse ms | phe+gmpy2 ms | phe / finpulse |")
print("|---|---|---|---|")
pairs = [("encrypt", "encrypt"), ("encrypt_short_exponent", "encrypt"), ("encrypt_key_holder_crt", "encrypt"), ("encrypt_from_pool", "encrypt"),
         ("decrypt", "decrypt"), ("add", "add"), ("mul_plain_16bit", "mul_plain_16bit")]
for mine, peer in pairs:
    a, b = ours[mine]["ms"], theirs[peer]["ms"]
    print(f"| {mine} (vs phe {peer}) | {a:.4f} | {b:.4f} | {b / a:.2f} |")
print(f"| pool fill per value ({ours['pool_fill_per_value']['threads']} threads) | {ours['pool_fill_per_value']['ms']:.4f} | | |")
print(f"| short-exponent table, once per key ({ours['short_exponent_table']['threads']} threads) | {ours['short_exponent_table']['ms']:.1f} | | |")
print(f"| encrypt (short exponent) on all cores ({ours['encrypt_all_cores']['threads']} threads) | {ours['encrypt_all_cores']['ms']:.4f} | | |")
PY
fi
if [ "$what" = psi ] || [ "$what" = all ]; then
  "$BIN" psi --ids "${PSI_IDS:-1000000}"
fi
if [ "$what" = lr ] || [ "$what" = all ]; then
  "$BIN" lr --data "$DATA" --bits 0 --epochs "${LR_PLAIN_EPOCHS:-5}"
  "$BIN" lr --data "$DATA" --bits "$BITS" --epochs "${LR_EPOCHS:-1}"
fi
if [ "$what" = boost ] || [ "$what" = all ]; then
  "$BIN" boost --data "$DATA" --bits 0 --trees "${BOOST_PLAIN_TREES:-20}"
  "$BIN" boost --data "$DATA" --bits "$BITS" --trees "${BOOST_TREES:-1}"
fi
