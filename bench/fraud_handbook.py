"""finpulse's fraud model on the Fraud Detection Handbook's own transactions, by its protocol,
beside a scikit-learn random forest trained on finpulse's exported features and the handbook's
published figures, in one run.

The data is the handbook's public repository of simulated transactions (5,000 customers,
10,000 terminals, daily pickles from 2018-04-01). Get it once, then convert it:

    git clone https://github.com/Fraud-Detection-Handbook/simulated-data-raw
    python bench/fraud_handbook.py convert simulated-data-raw bench/out/handbook

`convert` writes two files, as a bank brings its history: `payments.parquet` (one `payment` per
transaction) and `labels.parquet` (one `fraud_label` per fraudulent transaction, its `ts` seven
days after the payment: the handbook's delay period, after which a fraud is known). `run` fetches
nothing:

    python bench/fraud_handbook.py run target/release/finpulse bench/out/handbook

It imports the payments file and then the labels file with `finpulse import` (labels after the
payments, the order that once hid every label from the features), trains on 2018-07-25 to 07-31
with a 7-day delay, evaluates 2018-08-08 to 08-14 (cards known compromised removed), exports the
same periods' features with `fraud score --with-features`, trains scikit-learn's random forest
on them (the handbook's baseline settings) and prints one table. `FRAUD_TRAIN_ARGS` passes
settings to `fraud train` (e.g. `--leaves 15 --rounds 300`).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

TRAIN = ("2018-07-25", "2018-08-01")
TEST = ("2018-08-08", "2018-08-15")
DELAY_DAYS = 7
K = 100
# The handbook's published baseline (chapter "Baseline fraud detection system", trained on the
# week from 2018-07-25) and its tuned XGBoost (chapter "Model selection").
PUBLISHED = [
    ("handbook: random forest (published)", 0.867, 0.658, 0.287),
    ("handbook: XGBoost (published)", 0.862, 0.639, 0.273),
    ("handbook: tuned XGBoost (published)", 0.872, 0.687, 0.303),
]


SCENARIOS = {1: "1: amount above 220", 2: "2: compromised terminal (28 days)", 3: "3: compromised customer (14 days, a third of payments x5)"}


def convert(src: Path, out: Path) -> None:
    import pandas as pd

    files = sorted((src / "data").glob("*.pkl"))
    if not files:
        sys.exit(f"no daily pickles under {src / 'data'}: clone the handbook's simulated-data-raw repository there")
    df = pd.concat([pd.read_pickle(f) for f in files], ignore_index=True)
    # The handbook's times have no zone; they are taken as UTC, so its days are finpulse's days.
    ts = pd.to_datetime(df["TX_DATETIME"]).dt.tz_localize("UTC")
    payments = pd.DataFrame(
        {
            "event_id": "tx-" + df["TRANSACTION_ID"].astype(str),
            "user_id": "c" + df["CUSTOMER_ID"].astype(str),
            "ts": ts,
            "type": "payment",
            "amount_fen": (df["TX_AMOUNT"] * 100).round().astype("int64"),
            "currency": "EUR",
            "terminal_id": "t" + df["TERMINAL_ID"].astype(str),
        }
    )
    fraud = df["TX_FRAUD"] == 1
    labels = pd.DataFrame(
        {
            "event_id": "label-" + df.loc[fraud, "TRANSACTION_ID"].astype(str),
            "user_id": "c" + df.loc[fraud, "CUSTOMER_ID"].astype(str),
            "ts": ts[fraud] + pd.Timedelta(days=DELAY_DAYS),
            "type": "fraud_label",
            "target_event_id": "tx-" + df.loc[fraud, "TRANSACTION_ID"].astype(str),
            "is_fraud": True,
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    payments.to_parquet(out / "payments.parquet", index=False)
    labels.to_parquet(out / "labels.parquet", index=False)
    # Which scenario made each fraud: read by `run` to say what the model catches, never imported.
    scenarios = pd.DataFrame({"event_id": payments["event_id"][fraud], "scenario": df.loc[fraud, "TX_FRAUD_SCENARIO"]})
    scenarios.to_parquet(out / "scenarios.parquet", index=False)
    print(f"{len(payments):,} payments and {len(labels):,} fraud labels from {len(files)} days written to {out}")


def finpulse(binary: str, data_dir: Path, *args: str) -> str:
    cmd = [binary, *args, "--data-dir", str(data_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "FINPULSE_LOG": "warn"})
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return done.stdout


def handbook_metrics(scored, score_column: str):
    """AUC, AP and mean card precision@K the handbook's way, on payments of cards not known
    compromised; cards detected on a day are left out of the days after."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    kept = scored[scored["known_compromised"] == 0]
    auc = roc_auc_score(kept["label"], kept[score_column])
    ap = average_precision_score(kept["label"], kept[score_column])
    detected, precisions = set(), []
    for _, day in kept.groupby(kept["ts"].str[:10]):
        day = day[~day["user_id"].isin(detected)]
        cards = day.groupby("user_id").agg(score=(score_column, "max"), fraud=("label", "max")).reset_index()
        top = cards.sort_values(["score", "user_id"], ascending=[False, True]).head(K)
        hits = top[top["fraud"] == 1]["user_id"]
        precisions.append(len(hits) / K)
        detected.update(hits)
    return auc, ap, sum(precisions) / len(precisions)


def run(binary: str, data: Path, train=TRAIN, test=TEST, published=PUBLISHED) -> None:
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

    for f in ("payments.parquet", "labels.parquet"):
        if not (data / f).exists():
            sys.exit(f"{data / f} is missing: run `convert` first (see this file's header)")
    work = data / "run"
    subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    store = work / "store"
    started = time.perf_counter()
    finpulse(binary, store, "import", str(data / "payments.parquet"), str(data / "labels.parquet"))
    imported = time.perf_counter() - started

    started = time.perf_counter()
    trained = json.loads(
        finpulse(binary, store, "fraud", "train", "--from", train[0], "--to", train[1], "--delay-days", str(DELAY_DAYS), "--format", "json",
                 *os.environ.get("FRAUD_TRAIN_ARGS", "").split())
    )
    train_secs = time.perf_counter() - started
    started = time.perf_counter()
    evaluation = json.loads(finpulse(binary, store, "fraud", "eval", "--from", test[0], "--to", test[1], "--format", "json"))["evaluation"]
    eval_secs = time.perf_counter() - started

    train_csv, test_csv = work / "train.csv", work / "test.csv"
    finpulse(binary, store, "fraud", "score", "--from", train[0], "--to", train[1], "--with-features", "--out", str(train_csv))
    finpulse(binary, store, "fraud", "score", "--from", test[0], "--to", test[1], "--with-features", "--out", str(test_csv))
    train_rows, test_rows = pd.read_csv(train_csv), pd.read_csv(test_csv)
    features = [c for c in train_rows.columns if c not in ("event_id", "user_id", "ts", "score", "label", "known_compromised")]
    forest = RandomForestClassifier(random_state=0, n_jobs=-1)
    forest.fit(train_rows[features].fillna(-1), train_rows["label"])
    test_rows["forest"] = forest.predict_proba(test_rows[features].fillna(-1))[:, 1]
    # finpulse's own scores, measured by this script, must agree with `fraud eval`.
    ours = handbook_metrics(test_rows, "score")
    forest_metrics = handbook_metrics(test_rows, "forest")

    report = trained["report"]
    print(f"{data.name}: {report['payments']:,} training payments ({report['frauds_known']} frauds known by the delay), "
          f"{evaluation['payments']:,} test payments ({evaluation['frauds']} frauds; "
          f"{evaluation['removed_known_compromised']:,} of cards known compromised removed)")
    per_day = sum(d["compromised_cards"] for d in evaluation["days"]) / len(evaluation["days"])
    print(f"compromised cards per test day: {per_day:.1f} (CP@{K} cannot exceed {min(per_day, K) / K:.3f})")
    print(f"import {imported:.1f} s, train {train_secs:.1f} s, eval {eval_secs:.1f} s")
    print()
    print(f"| model | AUC | AP | CP@{K} |")
    print("|---|---|---|---|")
    print(f"| finpulse GBDT (`fraud eval`) | {evaluation['auc']:.3f} | {evaluation['average_precision']:.3f} | {evaluation['card_precision_at_k']:.3f} |")
    print(f"| finpulse GBDT (this script's metrics on `fraud score`) | {ours[0]:.3f} | {ours[1]:.3f} | {ours[2]:.3f} |")
    print(f"| scikit-learn random forest on finpulse's features | {forest_metrics[0]:.3f} | {forest_metrics[1]:.3f} | {forest_metrics[2]:.3f} |")
    for name, auc, ap, cp in published:
        print(f"| {name} | {auc:.3f} | {ap:.3f} | {cp:.3f} |")
    if (data / "scenarios.parquet").exists():
        from sklearn.metrics import roc_auc_score

        kept = test_rows[test_rows["known_compromised"] == 0].merge(pd.read_parquet(data / "scenarios.parquet"), on="event_id", how="left")
        genuine = kept[kept["label"] == 0]
        print()
        print("| scenario | frauds in the test | AUC against genuine payments (finpulse / forest) |")
        print("|---|---|---|")
        for scenario, frauds in kept[kept["label"] == 1].groupby("scenario"):
            both = pd.concat([genuine, frauds])
            print(f"| {SCENARIOS.get(int(scenario), scenario)} | {len(frauds)} | "
                  f"{roc_auc_score(both['label'], both['score']):.3f} / {roc_auc_score(both['label'], both['forest']):.3f} |")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "convert":
        convert(Path(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "run":
        run(sys.argv[2], Path(sys.argv[3]))
    else:
        sys.exit(__doc__)
