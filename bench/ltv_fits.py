"""LTV fits, finpulse against lifetimes on the same synthetic customers, in one run.

Customers are drawn from the BG/NBD and Pareto/NBD processes with the CDNOW parameters and
summarised in whole weeks, the way an operations team summarises its own purchase events.
Both are timed two ways: the fit alone (finpulse reports its own; lifetimes' `fit` call), and
from the CSV on disk to the parameters (finpulse as a whole process, start-up included;
lifetimes as pandas' `read_csv` plus the fit). lifetimes is run once on the rows as given and
once condensed to distinct (frequency, recency, T) with weights (its own option), so the ratio
is shown both ways. Condensing is timed with lifetimes' fit, as finpulse's fit includes its own.

    python bench/ltv_fits.py FINPULSE_BIN SCRATCH_DIR [CUSTOMERS]

lifetimes' Pareto/NBD on rows as given takes about 9 minutes at 100,000 customers, so above
RAW_PNBD_MAX customers that one comparison is skipped (and said so).
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, ParetoNBDFitter

WEEKS = 39  # calibration length for the first cohort, as in CDNOW
RAW_PNBD_MAX = 100_000


def draw(n: int, model: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    if model == "bgnbd":
        r, alpha, a, b = 0.2426, 4.4137, 0.7930, 2.4262
        lam = rng.gamma(r, 1.0 / alpha, n)
        p = rng.beta(a, b, n)
    else:
        r, alpha, s, beta = 0.5533, 10.5776, 0.6062, 11.6687
        lam = rng.gamma(r, 1.0 / alpha, n)
        mu = rng.gamma(s, 1.0 / beta, n)
    age = rng.integers(1, WEEKS + 1, n).astype(float)  # first purchase spread over the cohort
    freq = np.zeros(n)
    rec = np.zeros(n)
    for i in range(n):
        t, last, x = 0.0, 0.0, 0
        death = rng.exponential(1.0 / mu[i]) if model == "pnbd" else np.inf
        while True:
            t += rng.exponential(1.0 / lam[i]) if lam[i] > 0 else np.inf
            if t > age[i] or t > death:
                break
            x, last = x + 1, t
            if model == "bgnbd" and rng.random() < p[i]:
                break
        freq[i] = x
        rec[i] = np.floor(last) if x > 0 else 0.0
    return pd.DataFrame({"frequency": freq.astype(int), "recency": rec, "T": age})


def run_finpulse(binary: str, model: str, path: str) -> tuple[float, dict]:
    started = time.perf_counter()
    out = subprocess.run([binary, "ltv", "fit", "--model", model, "--input", path, "--format", "json"], check=True, capture_output=True, text=True)
    return time.perf_counter() - started, json.loads(out.stdout)


def run_lifetimes(model: str, path: str, condensed: bool) -> tuple[float, float, dict]:
    """(seconds from the CSV, seconds of the fit alone, parameters)."""
    fitter = BetaGeoFitter() if model == "bgnbd" else ParetoNBDFitter()
    started = time.perf_counter()
    d = pd.read_csv(path)
    read_secs = time.perf_counter() - started
    if condensed:
        started = time.perf_counter()
        g = d.groupby(["frequency", "recency", "T"]).size().reset_index(name="weight")
        fitter.fit(g["frequency"], g["recency"], g["T"], weights=g["weight"])
    else:
        started = time.perf_counter()
        fitter.fit(d["frequency"], d["recency"], d["T"])
    fit_secs = time.perf_counter() - started
    return read_secs + fit_secs, fit_secs, fitter.params_.to_dict()


def main() -> None:
    binary, scratch = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    for model in ["bgnbd", "pnbd"]:
        path = f"{scratch}/ltv-{model}-{n}.csv"
        if os.path.exists(path):  # the draw is seeded, so a file from an earlier run is the same
            d = pd.read_csv(path)
        else:
            d = draw(n, model, seed=7)
            d.to_csv(path, index=False)
        distinct = len(d.drop_duplicates())
        f_secs, f_fit = run_finpulse(binary, model, path)
        f_fit_secs = f_fit["fit_secs"]
        ours = {p["name"]: p["value"] for p in f_fit["params"]}
        print(f"{model}: {n:,} customers ({distinct:,} distinct summaries); finpulse: fit {f_fit_secs:.3f} s, whole process {f_secs:.3f} s")
        for condensed in [True, False]:
            how = "condensed with weights, condensing timed" if condensed else "rows as given"
            if not condensed and model == "pnbd" and n > RAW_PNBD_MAX:
                print(f"  lifetimes ({how}): skipped above {RAW_PNBD_MAX:,} customers")
                continue
            l_secs, l_fit_secs, theirs = run_lifetimes(model, path, condensed)
            worst = max(abs(ours[k] - v) / abs(v) for k, v in theirs.items())
            print(
                f"  lifetimes ({how}): fit {l_fit_secs:.3f} s = {l_fit_secs / f_fit_secs:.1f}x finpulse's fit; "
                f"read + fit {l_secs:.3f} s = {l_secs / f_secs:.1f}x finpulse's whole process; parameters within {worst:.1e} relative"
            )
        print(f"  finpulse: {ours}")
        print(f"  lifetimes: {theirs}")


if __name__ == "__main__":
    main()
