"""finpulse's classifiers against LightGBM (default settings) on the same splits, in one run.

Quality: the UCI credit-card default and the IBM telco churn tables, split by row number (every
fifth row, rows 4, 9, 14, ... counting from 0, is the test set; the rest trains). finpulse trains
through its CLI with its defaults (early stopping on a 10% slice of the training rows) and with
LightGBM's schedule (100 rounds, no early stopping); LightGBM trains with its defaults, string
columns as pandas categories, blanks as missing. AUC on the test rows, by scikit-learn.

Speed: SPEED_ROWS synthetic rows x 30 features (24 numeric with 2% missing, 6 categorical),
100 rounds, 31 leaves, no early stopping for both. finpulse is timed as a whole process from the
CSV (parsing included); LightGBM both from the CSV (pandas read included) and on the in-memory
frame alone, so the ratio is shown both ways. Prediction likewise, over the same rows.

    python bench/gbdt_compare.py FINPULSE_BIN SCRATCH_DIR [SPEED_ROWS]
"""
import json
import os
import subprocess
import sys
import time

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

DATA = os.path.join(os.path.dirname(__file__), "..", "testdata")
SETS = [
    ("uci-default-credit-card.csv", "default.payment.next.month", "ID"),
    ("telco-customer-churn.csv", "Churn", "customerID"),
]
MISSING = ["", "NA", "N/A", "null", "NULL"]


def is_test(n: int) -> np.ndarray:
    return np.arange(n) % 5 == 4


def lightgbm_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Numbers where every present cell is one (blanks missing), categories otherwise."""
    out = pd.DataFrame(index=df.index)
    for c in df.columns:
        s = df[c]
        if is_text(s):
            stripped = s.str.strip()
            present = ~stripped.isin(MISSING) & stripped.notna()
            numbers = pd.to_numeric(stripped.where(present), errors="coerce")
            if numbers[present].notna().all():
                out[c] = numbers
            else:
                out[c] = stripped.where(present).astype("category")
        else:
            out[c] = s
    return out


def is_text(s: pd.Series) -> bool:
    """Strings, whether pandas keeps them as objects (pandas 2) or as its string dtype (pandas 3)."""
    return s.dtype == object or pd.api.types.is_string_dtype(s.dtype)


def label_of(s: pd.Series) -> np.ndarray:
    if is_text(s):
        return s.str.strip().str.lower().isin(["1", "true", "yes"]).astype(int).to_numpy()
    return s.astype(int).to_numpy()


def run(cmd):
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr}")
    return time.perf_counter() - start, p.stdout


def finpulse_auc(bin_, scratch, name, train_csv, test_csv, label, id_col, extra):
    model = os.path.join(scratch, f"{name}.model.json")
    pred = os.path.join(scratch, f"{name}.pred.csv")
    secs, out = run([bin_, "model", "train", "--data", train_csv, "--label", label, "--id", id_col, "--out", model, "--format", "json", *extra])
    run([bin_, "model", "predict", "--model", model, "--data", test_csv, "--out", pred])
    scores = pd.read_csv(pred)["score"].to_numpy()
    return scores, secs, json.loads(out)


def quality(bin_, scratch):
    print("dataset,rows_train,rows_test,finpulse_auc,finpulse_100_rounds_auc,finpulse_logistic_auc,lightgbm_auc,finpulse_minus_lightgbm")
    for file, label, id_col in SETS:
        df = pd.read_csv(os.path.join(DATA, file), dtype=str, keep_default_na=False)
        test = is_test(len(df))
        name = file.removesuffix(".csv")
        train_csv, test_csv = os.path.join(scratch, f"{name}.train.csv"), os.path.join(scratch, f"{name}.test.csv")
        df[~test].to_csv(train_csv, index=False)
        df[test].to_csv(test_csv, index=False)
        y_test = label_of(df[label][test])
        ours, _, _ = finpulse_auc(bin_, scratch, name, train_csv, test_csv, label, id_col, [])
        ours_100, _, _ = finpulse_auc(bin_, scratch, name + "-100", train_csv, test_csv, label, id_col, ["--rounds", "100", "--early-stopping", "0", "--valid-fraction", "0"])
        ours_lr, _, _ = finpulse_auc(bin_, scratch, name + "-logistic", train_csv, test_csv, label, id_col, ["--algo", "logistic"])
        x = lightgbm_frame(df.drop(columns=[label, id_col]))
        clf = lgb.LGBMClassifier(verbose=-1)
        clf.fit(x[~test], label_of(df[label][~test]))
        theirs = clf.predict_proba(x[test])[:, 1]
        a, a100, alr, b = (roc_auc_score(y_test, s) for s in (ours, ours_100, ours_lr, theirs))
        print(f"{name},{(~test).sum()},{test.sum()},{a:.4f},{a100:.4f},{alr:.4f},{b:.4f},{a - b:+.4f}")


def synthetic(rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {}
    z = np.zeros(rows)
    for j in range(24):
        x = rng.normal(size=rows)
        z += (0.5 / (1 + j % 5)) * (x if j % 3 else np.tanh(2 * x))
        x[rng.random(rows) < 0.02] = np.nan
        cols[f"n{j}"] = np.round(x, 4)
    for j in range(6):
        k = 3 + 5 * j
        c = rng.integers(0, k, rows)
        effect = rng.normal(scale=0.4, size=k)
        z += effect[c]
        cols[f"c{j}"] = np.array([f"v{v}" for v in range(k)])[c]
    z += 0.5 * cols["n0"].copy().clip(-3, 3) * (cols["c0"] == "v1")
    p = 1 / (1 + np.exp(-(z - 1.0)))
    cols["label"] = (rng.random(rows) < p).astype(int)
    return pd.DataFrame(cols)


def speed(bin_, scratch, rows):
    path = os.path.join(scratch, f"gbdt-{rows}.csv")
    if not os.path.exists(path):
        synthetic(rows).to_csv(path, index=False, na_rep="")
    model = os.path.join(scratch, f"gbdt-{rows}.model.json")
    pred = os.path.join(scratch, f"gbdt-{rows}.pred.csv")
    same = ["--rounds", "100", "--early-stopping", "0", "--valid-fraction", "0"]
    fin_train, _ = run([bin_, "model", "train", "--data", path, "--label", "label", "--out", model, "--format", "json", *same])
    fin_pred, _ = run([bin_, "model", "predict", "--model", model, "--data", path, "--out", pred])

    t0 = time.perf_counter()
    df = pd.read_csv(path)
    for c in df.columns:
        if is_text(df[c]):
            df[c] = df[c].astype("category")
    read = time.perf_counter() - t0
    y = df.pop("label").to_numpy()
    t0 = time.perf_counter()
    clf = lgb.LGBMClassifier(verbose=-1)
    clf.fit(df, y)
    lgb_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = clf.predict_proba(df)[:, 1]
    lgb_pred = time.perf_counter() - t0
    ours = pd.read_csv(pred)["score"].to_numpy()
    print(f"rows={rows} features=30 rounds=100 leaves=31 (in-sample AUC finpulse {roc_auc_score(y, ours):.4f}, LightGBM {roc_auc_score(y, theirs):.4f})")
    print(f"train: finpulse {fin_train:.2f} s (CSV to model file); LightGBM {lgb_train:.2f} s in memory, {lgb_train + read:.2f} s with pandas reading the CSV")
    print(f"  finpulse/LightGBM time ratio: {fin_train / (lgb_train + read):.2f} from the CSV, {fin_train / lgb_train:.2f} against in-memory")
    print(f"predict: finpulse {rows / fin_pred:,.0f} rows/s (CSV to scores file); LightGBM {rows / lgb_pred:,.0f} rows/s in memory, {rows / (lgb_pred + read):,.0f} rows/s with reading")


def main():
    bin_, scratch = sys.argv[1], sys.argv[2]
    rows = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    scratch = os.path.join(scratch, "gbdt")
    os.makedirs(scratch, exist_ok=True)
    print(f"lightgbm {lgb.__version__}")
    quality(bin_, scratch)
    speed(bin_, scratch, rows)


if __name__ == "__main__":
    main()
