"""A third fraud data set, with patterns neither finpulse's simulator nor the handbook's has, to
check that the fraud model generalises rather than fits one generator. Nothing here was tuned
to finpulse's features: the scenarios come from card-fraud practice, and the model is trained
with `fraud train`'s defaults.

    python bench/fraud_world.py generate bench/out/fraud-world
    python bench/fraud_world.py run target/release/finpulse bench/out/fraud-world

The world: 6,000 cardholders over 150 days from 2025-01-01 (UTC), 4,000 terminals. Genuine
cardholders pay at their usual terminals with their own amount habits, change phones now and
then, and sometimes shop somewhere new. Three fraud scenarios:

- account takeover: an attacker on a new device makes 2-6 large payments within hours, at
  terminals the cardholder never used;
- card testing: a stolen card makes 3-10 tiny payments (0.5-3 yuan) within half an hour, then
  1-2 large ones the next day;
- breach and cash-out: a terminal is breached for 5 days; a third of the cards used there are
  cashed out 3-20 days later, in round amounts, at one of 20 colluding terminals.

Chargebacks arrive 1-40 days after the payment (median 5 days); 8% of frauds are never
reported (they stay genuine in the data, as in life). The files have the same shape as the
handbook conversion's (`payments.parquet`, `labels.parquet`).
"""

import sys
from pathlib import Path

import numpy as np

from fraud_handbook import run

SEED = 7
CARDS = 6_000
TERMINALS = 4_000
DAYS = 150
START = np.datetime64("2025-01-01T00:00:00", "us")
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
USUAL_TERMINALS = 8
COLLUDING = 20
NEVER_REPORTED = 0.08
TRAIN = ("2025-04-01", "2025-04-08")
TEST = ("2025-04-15", "2025-04-22")


def generate(out: Path) -> None:
    import pandas as pd

    rng = np.random.default_rng(SEED)
    rate = rng.uniform(0.3, 2.5, CARDS)  # payments per day
    mu = rng.uniform(np.log(2_000), np.log(30_000), CARDS)  # log amount in fen
    # Some places are much busier than others (Zipf-like), and a breach hits a busy one.
    shops = TERMINALS - COLLUDING - 200
    busy = 1 / np.arange(1, shops + 1) ** 0.8
    usual = rng.choice(shops, (CARDS, USUAL_TERMINALS), p=busy / busy.sum())
    online_share = rng.uniform(0.1, 0.8, CARDS)
    device = np.arange(CARDS)  # the current phone's number
    next_device = CARDS
    colluding = np.arange(TERMINALS - COLLUDING, TERMINALS)
    web_shops = np.arange(TERMINALS - COLLUDING - 200, TERMINALS - COLLUDING)
    breaches = []  # (terminal, first day, last day)
    cashouts = []  # (card, day)
    rows = {"card": [], "ts": [], "terminal": [], "amount": [], "device": [], "fraud": []}

    def add(card, ts, terminal, amount, dev, fraud):
        n = len(card)
        rows["card"].append(np.asarray(card))
        rows["ts"].append(np.asarray(ts, dtype=np.int64))
        rows["terminal"].append(np.asarray(terminal))
        rows["amount"].append(np.maximum(np.asarray(amount, dtype=np.int64), 1))
        rows["device"].append(np.broadcast_to(np.asarray(dev, dtype=np.int64), n).copy())
        rows["fraud"].append(np.full(n, fraud))

    for day in range(DAYS):
        t0 = day * DAY_US
        # Genuine payments: usual terminals mostly, daytime mostly.
        n = rng.poisson(rate)
        card = np.repeat(np.arange(CARDS), n)
        hours = np.clip(rng.normal(14, 4, len(card)), 0, 23.99)
        ts = t0 + (hours * HOUR_US).astype(np.int64)
        # Anywhere now and then (the colluding terminals are real shops too, and web shops are
        # where online payments go).
        new_place = rng.random(len(card)) < 0.08
        terminal = np.where(new_place, rng.integers(0, TERMINALS, len(card)), usual[card, rng.integers(0, USUAL_TERMINALS, len(card))])
        online = rng.random(len(card)) < online_share[card]
        terminal = np.where(online & (rng.random(len(card)) < 0.5), rng.choice(web_shops, len(card)), terminal)
        amount = np.exp(rng.normal(mu[card], 0.6))
        # Genuine habits that look like fraud: small payments (transit, vending), a big
        # purchase several times the usual, round top-ups.
        kind = rng.random(len(card))
        amount = np.where(kind < 0.03, rng.integers(100, 600, len(card)), amount)
        amount = np.where((kind >= 0.03) & (kind < 0.04), np.exp(mu[card]) * rng.uniform(3, 10, len(card)), amount)
        amount = np.where((kind >= 0.04) & (kind < 0.05), rng.choice([10_000, 20_000, 50_000, 100_000], len(card)), amount)
        add(card, ts, terminal, amount, np.where(online, device[card], -1), False)
        # Genuine phone changes.
        changed = np.flatnonzero(rng.random(CARDS) < 0.004)
        device[changed] = next_device + np.arange(len(changed))
        next_device += len(changed)

        # Account takeover.
        for c in np.flatnonzero(rng.random(CARDS) < 0.0008):
            k = rng.integers(2, 7)
            start = t0 + rng.integers(0, 20 * HOUR_US)
            ts = start + np.sort(rng.integers(0, 6 * HOUR_US, k))
            # Often at the cardholder's kind of shop and not always far above the usual amount.
            amount = np.exp(mu[c]) * rng.lognormal(np.log(2.5), 0.6, k)
            where = np.where(rng.random(k) < 0.5, rng.choice(web_shops, k), usual[c, rng.integers(0, USUAL_TERMINALS, k)])
            add(np.full(k, c), ts, where, amount, next_device, True)
            next_device += 1
        # Card testing, then the real use.
        for c in np.flatnonzero(rng.random(CARDS) < 0.0006):
            k = rng.integers(3, 11)
            start = t0 + rng.integers(0, 22 * HOUR_US)
            ts = start + np.sort(rng.integers(0, HOUR_US // 2, k))
            add(np.full(k, c), ts, rng.choice(web_shops, k), rng.integers(50, 300, k), -1, True)
            m = rng.integers(1, 3)
            later = start + DAY_US + rng.integers(0, 12 * HOUR_US, m)
            add(np.full(m, c), later, rng.integers(0, TERMINALS - COLLUDING, m), np.exp(mu[c]) * rng.uniform(1, 6, m), -1, True)
        # A breach now and then.
        if rng.random() < 1 / 12:
            breaches.append((int(rng.integers(0, 100)), day, day + 4))

    payments = {k: np.concatenate(v) for k, v in rows.items()}
    # Cash-out of cards seen at a breached terminal during its breach.
    day_of = payments["ts"] // DAY_US
    for terminal, first, last in breaches:
        seen = np.unique(payments["card"][(payments["terminal"] == terminal) & (day_of >= first) & (day_of <= last) & ~payments["fraud"]])
        for c in seen[rng.random(len(seen)) < 1 / 3]:
            when = (last + rng.integers(3, 21)) * DAY_US + rng.integers(0, DAY_US)
            if when >= DAYS * DAY_US:
                continue
            k = rng.integers(1, 4)
            ts = when + np.sort(rng.integers(0, 3 * HOUR_US, k))
            amount = rng.choice([100_000, 200_000, 300_000, 500_000], k) + rng.integers(-500, 500, k)
            cashouts.append((c, k))
            add(np.full(k, c), ts, np.full(k, rng.choice(colluding)), amount, -1, True)
    payments = {k: np.concatenate(v) for k, v in rows.items()}

    order = np.argsort(payments["ts"], kind="stable")
    p = {k: v[order] for k, v in payments.items()}
    n = len(p["ts"])
    ids = np.char.add("w", np.arange(n).astype(str))
    ts = START + p["ts"].astype("timedelta64[us]")
    table = pd.DataFrame(
        {
            "event_id": ids,
            "user_id": np.char.add("card", p["card"].astype(str)),
            "ts": pd.to_datetime(ts).tz_localize("UTC"),
            "type": "payment",
            "amount_fen": p["amount"],
            "currency": "CNY",
            "terminal_id": np.char.add("term", p["terminal"].astype(str)),
            "device_id": np.where(p["device"] >= 0, np.char.add("dev", p["device"].astype(str)), None),
        }
    )
    reported = p["fraud"] & (rng.random(n) >= NEVER_REPORTED)
    delay_us = (np.clip(rng.lognormal(np.log(5), 0.7, n), 1, 40) * DAY_US).astype(np.int64)
    labels = pd.DataFrame(
        {
            "event_id": np.char.add("cb-", ids[reported]),
            "user_id": table["user_id"][reported].to_numpy(),
            "ts": pd.to_datetime(START + (p["ts"][reported] + delay_us[reported]).astype("timedelta64[us]")).tz_localize("UTC"),
            "type": "fraud_label",
            "target_event_id": ids[reported],
            "is_fraud": True,
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "payments.parquet", index=False)
    labels.to_parquet(out / "labels.parquet", index=False)
    print(
        f"{n:,} payments ({int(p['fraud'].sum()):,} fraud: {len(breaches)} breaches, {len(cashouts)} cards cashed out) "
        f"and {len(labels):,} chargebacks written to {out}"
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "generate":
        generate(Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "run":
        run(sys.argv[2], Path(sys.argv[3]), train=TRAIN, test=TEST, published=[])
    else:
        sys.exit(__doc__)
