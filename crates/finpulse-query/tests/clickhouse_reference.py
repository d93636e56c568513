"""Runs ClickHouse (embedded, via chdb) queries for finpulse's differential tests.

usage: clickhouse_reference.py QUERIES_FILE
Each line of QUERIES_FILE is one query returning (user, value); prints `index<TAB>user<TAB>value`
per result row, or `index<TAB>error<TAB>message` when ClickHouse rejects the query.
"""
import sys

import chdb

with open(sys.argv[1]) as f:
    queries = [line.rstrip("\n") for line in f if line.strip()]
out = []
for i, q in enumerate(queries):
    try:
        res = chdb.query(q, "TSV")
        text = res.bytes().decode() if hasattr(res, "bytes") else str(res)
    except Exception as e:  # noqa: BLE001 - reported to the test, which decides
        out.append(f"{i}\terror\t{str(e).splitlines()[0]}")
        continue
    for row in text.splitlines():
        if row:
            out.append(f"{i}\t{row}")
sys.stdout.write("\n".join(out) + "\n")
