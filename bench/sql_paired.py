"""Times SQL through two finpulse servers side by side, query by query, alternating A and B:

    python3 bench/sql_paired.py BIN_A DATA_A BIN_B DATA_B [RUNS]

Each BIN serves its DATA (made with `BIN demo --users N --no-serve --data-dir DATA`) on a free
local port with an admin key it creates itself; each query is sent once to warm up, then RUNS
times (default 5) to each server in turn. Prints each query's median seconds on A and on B and
the ratio A/B of the medians. What it times is what a user gets: POST /v1/sql, answer read whole.
"""
import http.client, json, os, socket, statistics, subprocess, sys, time

QUERIES = {
    "count": "SELECT count(*) FROM events",
    "sequence_match": "SELECT count(*) FROM (SELECT user_id FROM events GROUP BY user_id "
    "HAVING sequence_match('(?1).*(?t<=86400)(?2)', ts, type = 'deposit', type = 'withdrawal') = 1)",
    "sequence_count": "SELECT sum(n) FROM (SELECT user_id, sequence_count('(?1)(?2)', ts, type = 'app_session', type = 'payment') AS n "
    "FROM events GROUP BY user_id)",
    "window_funnel": "SELECT level, count(*) FROM (SELECT user_id, window_funnel(604800, '', ts, type = 'user_signup', "
    "type = 'identity_verified', type = 'card_bound', type = 'deposit') AS level FROM events GROUP BY user_id) GROUP BY level ORDER BY level",
    "window_funnel strict_order": "SELECT level, count(*) FROM (SELECT user_id, window_funnel(86400, 'strict_order', ts, "
    "type = 'app_session', type = 'payment') AS level FROM events GROUP BY user_id) GROUP BY level ORDER BY level",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, data):
    env = dict(os.environ, FINPULSE_LOG="warn")
    out = subprocess.run([binary, "keys", "create", "--role", "admin", "--label", "sql-bench", "--data-dir", data],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"{binary} keys create failed: {out.stderr}")
    key = out.stdout.strip().splitlines()[-1]
    port = free_port()
    proc = subprocess.Popen([binary, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}"],
                            env=env, stdout=subprocess.DEVNULL)
    deadline = time.time() + 600
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/healthz")
            r = c.getresponse()
            body = json.loads(r.read())
            if r.status == 200 and not body.get("warming"):
                break
        except OSError:
            pass
        if time.time() > deadline:
            proc.kill()
            sys.exit(f"{binary} did not answer /healthz within 600 s")
        time.sleep(0.2)
    return proc, port, key


def run(port, key, sql):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t = time.perf_counter()
    c.request("POST", "/v1/sql", json.dumps({"query": sql}), {"authorization": f"Bearer {key}", "content-type": "application/json"})
    r = c.getresponse()
    body = r.read()
    secs = time.perf_counter() - t
    if r.status != 200:
        sys.exit(f"{sql}: {r.status} {body[:300]!r}")
    return secs, body


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    bin_a, data_a, bin_b, data_b = sys.argv[1:5]
    runs = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    a, b = start(bin_a, data_a), start(bin_b, data_b)
    try:
        print(f"{'query':<28} {'A median s':>10} {'B median s':>10} {'A/B':>6}  same answer")
        for name, sql in QUERIES.items():
            _, answer_a = run(a[1], a[2], sql)
            _, answer_b = run(b[1], b[2], sql)
            times_a, times_b = [], []
            for _ in range(runs):
                times_a.append(run(a[1], a[2], sql)[0])
                times_b.append(run(b[1], b[2], sql)[0])
            ma, mb = statistics.median(times_a), statistics.median(times_b)
            print(f"{name:<28} {ma:>10.3f} {mb:>10.3f} {ma / mb:>6.2f}  {answer_a == answer_b}")
    finally:
        for proc, _, _ in (a, b):
            proc.kill()
            proc.wait()


main()
