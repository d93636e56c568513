"""python-paillier (phe, with gmpy2) timed the way federation-bench times finpulse's Paillier:
the same operations on the same integer values, one core, one JSON object per operation."""
import argparse, json, time

import gmpy2  # noqa: F401  (phe uses it when it is importable; fail here if it is not)
from phe import paillier

parser = argparse.ArgumentParser()
parser.add_argument("--bits", type=int, default=2048)
parser.add_argument("--ops", type=int, default=100)
args = parser.parse_args()

def per_op_ms(ops, f):
    start = time.perf_counter()
    for i in range(ops):
        f(i)
    return (time.perf_counter() - start) * 1e3 / ops

start = time.perf_counter()
public, secret = paillier.generate_paillier_keypair(n_length=args.bits)
print(json.dumps({"op": "keygen", "bits": args.bits, "ms": (time.perf_counter() - start) * 1e3}))
values = [i * 7919 - 400_000 for i in range(args.ops)]
cts = []
def report(op, ms):
    print(json.dumps({"op": op, "bits": args.bits, "ms": ms, "threads": 1}))
report("encrypt", per_op_ms(args.ops, lambda i: cts.append(public.encrypt(values[i]))))
def check(i):
    assert secret.decrypt(cts[i]) == values[i]
report("decrypt", per_op_ms(args.ops, check))
report("add", per_op_ms(args.ops * 20, lambda i: cts[i % args.ops] + cts[(i + 1) % args.ops]))
report("mul_plain_16bit", per_op_ms(args.ops, lambda i: cts[i] * (40_000 + i)))
