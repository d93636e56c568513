"""Funnel and retention on the same Parquet file: finpulse against ClickHouse (chdb) and DuckDB.

usage: behaviour.py FINPULSE_BENCH_BINARY SCRATCH_DIR EVENTS [REPEAT]

Writes SCRATCH_DIR/behaviour-EVENTS.parquet once (about 30 events per user over 90 days, sorted
by user and time, as finpulse compacts), then runs, in one process run and on the same file:
  - a 4-step window funnel (signup → bind_card → first_deposit → invest within 7 days):
    ClickHouse `windowFunnel`, finpulse `window_funnel`, and for DuckDB (which has no funnel
    function) the same question in SQL: from every signup, the earliest next step at or after the
    previous one (ASOF joins), the deepest step inside the window, per user;
  - a D0/D1/D7/D30 retention of the users active on day 30: ClickHouse and finpulse `retention`,
    DuckDB `bool_or` per user.
Every engine's answer (users per funnel level; retained users per day) must agree, or the run
fails. Prints the best of REPEAT times, events scanned per second per core, and the ratios.
"""
import json
import os
import subprocess
import sys
import time

import chdb
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DAY = 86_400
START = 1_767_225_600  # 2026-01-01 UTC
WINDOW = 7 * DAY
STEPS = ["signup", "bind_card", "first_deposit", "invest"]
OTHER = ["app_open", "page_view", "payment", "transfer", "deposit", "redeem"]
COHORT_DAY = 30
RETURN_DAYS = [0, 1, 7, 30]


def make(path: str, events: int) -> None:
    rng = np.random.default_rng(42)
    users = max(1, events // 30)
    counts = rng.poisson(30, users).astype(np.int64)
    counts[counts == 0] = 1
    scale = events / counts.sum()
    counts = np.maximum(1, np.round(counts * scale)).astype(np.int64)
    counts[-1] += events - counts.sum()
    counts = np.maximum(counts, 1)
    n = int(counts.sum())
    user = np.repeat(np.arange(users, dtype=np.int64), counts)
    first = np.repeat(START + rng.integers(0, 60 * DAY, users), counts)
    # Gaps: a couple of days on average (users stay for weeks), some the same second (ties).
    gaps = rng.exponential(2 * DAY, n).astype(np.int64)
    gaps[rng.random(n) < 0.05] = 0
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    gaps[starts] = 0
    offset = np.cumsum(gaps)
    offset -= np.repeat(offset[starts], counts)
    ts = (first + offset).astype(np.uint32)
    names = STEPS + OTHER
    # Each user's first event is a signup; later ones mostly app use, steps less often.
    p = np.array([0.01, 0.03, 0.03, 0.03, 0.40, 0.20, 0.10, 0.08, 0.07, 0.05])
    kind = rng.choice(len(names), n, p=p / p.sum())
    kind[starts] = 0
    event = pa.DictionaryArray.from_arrays(pa.array(kind.astype(np.int32)), pa.array(names))
    table = pa.table({"user_id": user, "ts": pa.array(ts, pa.uint32()), "event": event})
    pq.write_table(table, path, row_group_size=1 << 20, compression="snappy")


def day_range(d: int) -> tuple[int, int]:
    lo = START + (COHORT_DAY + d) * DAY
    return lo, lo + DAY


def conditions() -> str:
    return ", ".join(f"ts >= {lo} AND ts < {hi}" for lo, hi in map(day_range, RETURN_DAYS))


def queries(path: str) -> dict:
    steps = ", ".join(f"event = '{s}'" for s in STEPS)
    ch_table = f"file('{path}', Parquet)"
    retention_sums = ", ".join(f"sum(r[{i + 1}])" for i in range(len(RETURN_DAYS)))
    q = {
        "funnel": {
            "clickhouse": f"SELECT level, count() FROM (SELECT user_id, windowFunnel({WINDOW})(ts, {steps}) AS level "
            f"FROM {ch_table} GROUP BY user_id) GROUP BY level ORDER BY level",
            "finpulse": f"SELECT level, count(*) FROM (SELECT user_id, window_funnel({WINDOW}, '', ts, {steps}) AS level "
            f"FROM events GROUP BY user_id) GROUP BY level ORDER BY level",
            "duckdb": duckdb_funnel(path),
        },
        "retention": {
            "clickhouse": f"SELECT {retention_sums} FROM (SELECT user_id, retention({conditions()}) AS r FROM {ch_table} GROUP BY user_id)",
            "finpulse": f"SELECT {retention_sums} FROM (SELECT user_id, retention({conditions()}) AS r FROM events GROUP BY user_id)",
            "duckdb": duckdb_retention(path),
        },
    }
    return q


def duckdb_funnel(path: str) -> str:
    parts = [f"s AS (SELECT user_id, ts, event FROM read_parquet('{path}') WHERE event IN ({', '.join(repr(s) for s in STEPS)}))"]
    parts.append("c1 AS (SELECT user_id, ts AS t0, ts AS t1 FROM s WHERE event = 'signup')")
    for k in range(2, len(STEPS) + 1):
        parts.append(
            f"c{k} AS (SELECT c.user_id, c.t0, n.ts AS t{k} FROM c{k - 1} c ASOF LEFT JOIN "
            f"(SELECT user_id, ts FROM s WHERE event = '{STEPS[k - 1]}') n ON c.user_id = n.user_id AND n.ts >= c.t{k - 1})"
        )
    # Join the chain back per start; the level of a start is the deepest step inside the window.
    select = ["c1.user_id", "c1.t0"] + [f"c{k}.t{k}" for k in range(2, len(STEPS) + 1)]
    joins = " ".join(f"JOIN c{k} USING (user_id, t0)" for k in range(2, len(STEPS) + 1))
    parts.append(f"chain AS (SELECT DISTINCT {', '.join(select)} FROM c1 {joins})")
    level = "CASE " + " ".join(
        f"WHEN {' AND '.join(f't{j} <= t0 + {WINDOW}' for j in range(2, k + 1))} THEN {k}" for k in range(len(STEPS), 1, -1)
    ) + " ELSE 1 END"
    parts.append(f"per_user AS (SELECT user_id, max({level}) AS level FROM chain GROUP BY user_id)")
    parts.append(
        f"everyone AS (SELECT DISTINCT user_id FROM read_parquet('{path}'))"
    )
    return (
        "WITH " + ", ".join(parts) + " SELECT coalesce(p.level, 0) AS level, count(*) FROM everyone e LEFT JOIN per_user p "
        "USING (user_id) GROUP BY 1 ORDER BY 1"
    )


def duckdb_retention(path: str) -> str:
    flags = ", ".join(f"bool_or(ts >= {lo} AND ts < {hi}) AS r{i}" for i, (lo, hi) in enumerate(map(day_range, RETURN_DAYS)))
    sums = ", ".join(["sum(r0::INT)"] + [f"sum((r0 AND r{i})::INT)" for i in range(1, len(RETURN_DAYS))])
    return f"SELECT {sums} FROM (SELECT user_id, {flags} FROM read_parquet('{path}') GROUP BY user_id)"


def best(run, repeat: int):
    times, rows = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        rows = run()
        times.append(time.perf_counter() - started)
    return min(times), rows


def norm(rows) -> list:
    return [[int(v) for v in r] for r in rows]


def main() -> None:
    binary, scratch, events = sys.argv[1], sys.argv[2], int(sys.argv[3])
    repeat = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    cores = os.cpu_count() or 1
    path = os.path.abspath(os.path.join(scratch, f"behaviour-{events}.parquet"))
    if not os.path.exists(path):
        started = time.perf_counter()
        make(path, events)
        print(f"wrote {path} ({os.path.getsize(path) / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s", flush=True)
    n = pq.ParquetFile(path).metadata.num_rows
    con = duckdb.connect()
    con.execute(f"SET threads = {cores}")
    failed = False
    for name, q in queries(path).items():
        ch_secs, ch_rows = best(lambda: [line.split("\t") for line in str(chdb.query(q["clickhouse"], "TSV")).strip().splitlines()], repeat)
        dd_secs, dd_rows = best(lambda: con.execute(q["duckdb"]).fetchall(), repeat)
        command = [binary, "behaviour", "--parquet", path, "--repeat", str(repeat), q["finpulse"]]
        if name == "funnel":
            command[2:2] = ["--machine-steps", ",".join(STEPS), "--machine-window", str(WINDOW)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        fp = json.loads(out)
        results = {"finpulse": norm(fp["rows"]), "clickhouse": norm(ch_rows), "duckdb": norm(dd_rows)}
        agree = results["finpulse"] == results["clickhouse"] == results["duckdb"]
        failed |= not agree
        rate = lambda secs: n / secs / cores / 1e6  # noqa: E731
        print(f"== {name}: {n:,} events, {cores} cores, best of {repeat}; answers {'agree' if agree else 'DIFFER'}: {results['finpulse']}")
        if not agree:
            print(f"   clickhouse {results['clickhouse']}\n   duckdb     {results['duckdb']}")
        for engine, secs in [("finpulse", fp["best_secs"]), ("clickhouse", ch_secs), ("duckdb", dd_secs)]:
            ratio = secs / fp["best_secs"]
            print(f"   {engine:<11} {secs * 1000:9.1f} ms  {rate(secs):7.1f} M events/s/core  ({ratio:.2f}x finpulse's time)")
        if "machine_events_per_sec" in fp:
            print(f"   finpulse state machine alone: {fp['machine_events_per_sec'] / 1e6:.0f} M events/s on one core")
    if failed:
        sys.exit("engines disagree")


if __name__ == "__main__":
    main()
