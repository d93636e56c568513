#!/usr/bin/env bash
# Property-based attack on every endpoint a finpulse server describes in its own OpenAPI
# document: schemathesis (from PyPI) generates valid and invalid requests, authenticated as an
# administrator, and fails on any 5xx, any answer the document does not allow, and any
# endpoint that answers without credentials. Revoking and rotating keys are left out: the run would end
# its own key (the access tests cover both).
#   bash bench/schemathesis.sh [FINPULSE_BINARY [SCHEMATHESIS_OPTIONS]]   (default: target/release/finpulse)
set -euo pipefail
cd "$(dirname "$0")/.."
FINPULSE=${1:-${CARGO_TARGET_DIR:-target}/release/finpulse}
[ $# -gt 0 ] && shift
VENV=${FINPULSE_SCHEMATHESIS_VENV:-$HOME/.cache/finpulse/schemathesis-venv}
if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV" || { echo "schemathesis: python3 with venv is needed" >&2; exit 1; }
  "$VENV/bin/pip" install -q 'schemathesis>=4,<5' || { echo "schemathesis: installing it from PyPI failed" >&2; exit 1; }
fi
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$FINPULSE" demo --users 300 --days 20 --no-serve --data-dir "$WORK/data" >/dev/null 2>&1
KEY=$("$FINPULSE" keys create --role admin --label schemathesis --data-dir "$WORK/data" 2>/dev/null | tail -1)
FINPULSE_LOG=warn "$FINPULSE" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
curl -sf -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/openapi.json" >"$WORK/openapi.json"
# Run from the scratch folder: schemathesis keeps its cache of failures in the working directory.
cd "$WORK"
"$VENV/bin/schemathesis" run "$WORK/openapi.json" --url "http://127.0.0.1:$PORT" \
  --header "Authorization: Bearer $KEY" \
  --exclude-path-regex '/(revoke|rotate)$' \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth \
  --max-examples "${EXAMPLES:-30}" --workers 2 --seed 1 "$@"
