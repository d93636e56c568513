"""Times POST /v1/decisions sent again for one transaction against a running finpulse server:
FINPULSE_KEY=KEY python3 bench/decision_retry.py PORT N (the first request decides, the rest are
retries); KEY is a key with the decide permission (`finpulse keys create --role partner_app`)."""
import http.client, json, os, sys, time, statistics
port, n = int(sys.argv[1]), int(sys.argv[2])
key = os.environ.get("FINPULSE_KEY") or sys.exit("set FINPULSE_KEY to a key with the decide permission (finpulse keys create --role partner_app)")
body = json.dumps({"event_id": "rt-1", "user_id": "u0000042", "ts": "2026-04-01T10:00:00+08:00", "type": "payment", "amount_fen": 99000, "currency": "CNY", "terminal_id": "t00042"})
c = http.client.HTTPConnection("127.0.0.1", port)
lat = []
for i in range(n):
    t = time.perf_counter()
    c.request("POST", "/v1/decisions", body, {"content-type": "application/json", "authorization": f"Bearer {key}"})
    r = c.getresponse(); d = json.loads(r.read())
    lat.append((time.perf_counter() - t) * 1000)
print(f"{n} requests: median {statistics.median(lat):.3f} ms, p90 {sorted(lat)[int(n*0.9)]:.3f} ms; recorded: {d['recorded'][:40]}")
