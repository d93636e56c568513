"""Writes the golden fixtures for importing models trained elsewhere.

Trains LightGBM and XGBoost on the UCI credit-default table (with some values blanked so
missing-value routing is exercised), saves each model in its own format (LightGBM text,
XGBoost JSON), and writes 300 rows with the probabilities each library itself predicts.
finpulse's import must reproduce those probabilities.

    python bench/golden_models.py testdata/uci-default-credit-card.csv crates/finpulse-models/tests/data/golden
"""
import sys
import numpy as np
import pandas as pd
import lightgbm as lgb
import xgboost as xgb

src, out = sys.argv[1], sys.argv[2]
df = pd.read_csv(src).drop(columns=["ID"])
y = df.pop("default.payment.next.month").to_numpy()
rng = np.random.default_rng(7)
X = df.astype(float)
# Blank 5% of three columns so both libraries learn where missing values go.
for col in ["PAY_0", "BILL_AMT1", "AGE"]:
    X.loc[rng.random(len(X)) < 0.05, col] = np.nan

booster = lgb.train({"objective": "binary", "num_leaves": 15, "learning_rate": 0.1, "verbose": -1, "seed": 7},
                    lgb.Dataset(X, y), num_boost_round=40)
booster.save_model(f"{out}/lightgbm.txt")

model = xgb.XGBClassifier(n_estimators=40, max_depth=4, learning_rate=0.1, random_state=7)
model.fit(X, y)
model.get_booster().save_model(f"{out}/xgboost.json")

rows = X.sample(300, random_state=11)
golden = rows.copy()
golden["lightgbm"] = booster.predict(rows)
golden["xgboost"] = model.predict_proba(rows)[:, 1]
golden.to_csv(f"{out}/rows.csv", index=False, float_format="%.17g", na_rep="")
print(f"lightgbm {lgb.__version__}, xgboost {xgb.__version__}: wrote {len(golden)} golden rows to {out}")
