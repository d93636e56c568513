"""DuckDB on the same Parquet files finpulse compacted: the peer for scan benchmarks."""
import json
import statistics
import sys
import time

import duckdb


def main() -> None:
    data_dir, repeat, query = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    con = duckdb.connect()
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{data_dir}/parquet/*/*.parquet')")
    times = []
    rows = 0
    for _ in range(repeat):
        started = time.perf_counter()
        rows = len(con.execute(query).fetchall())
        times.append(time.perf_counter() - started)
    print(json.dumps({"engine": "duckdb", "version": duckdb.__version__, "median_secs": round(statistics.median(times), 4), "rows": rows}))


if __name__ == "__main__":
    main()
