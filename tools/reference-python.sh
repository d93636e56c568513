#!/usr/bin/env bash
# Prints the path of a Python that has the reference implementations finpulse is checked
# against (ClickHouse via chdb, DuckDB, lifetimes, LightGBM, XGBoost), installing what is missing
# from PyPI into one virtual environment kept outside the repository.
#   tools/reference-python.sh chdb duckdb     # make sure these import, print the interpreter
set -euo pipefail
VENV="${FINPULSE_BENCH_VENV:-$HOME/.cache/finpulse/bench-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" >&2
fi
for module in "$@"; do
  case "$module" in
    sklearn) package=scikit-learn ;;
    *) package="$module" ;;
  esac
  if ! "$VENV/bin/python" -c "import $module" 2>/dev/null; then
    echo "installing $package into $VENV" >&2
    "$VENV/bin/pip" install --quiet "$package" >&2
  fi
done
echo "$VENV/bin/python"
