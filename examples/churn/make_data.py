#!/usr/bin/env python3
"""Generate the synthetic customer-churn dataset used by the churn example.

Every customer is described by six numeric features and a binary label
``churned``. Labels are drawn from a noisy logistic ground truth that contains
a few non-linear effects (an interaction between charges and tenure, and a
quadratic effect of support calls), so a plain linear model is good but not
perfect.

Three splits are written to ``data/``:

* ``train.csv``        -- 800 rows from the reference distribution
* ``validation.csv``   -- 200 rows from the reference distribution
* ``test-shifted.csv`` -- 200 rows from a shifted population (newer, more
  expensive, more support-heavy customers whose churn behaviour also differs
  a little); a deliberately harder second evaluation set

Only ``random.Random(seed)`` is used for randomness and every value is written
with fixed formatting, so the output is byte-identical on every run.
Standard library only.
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

SEED = 1729

COLUMNS = [
    "tenure_months",
    "monthly_charges",
    "support_calls",
    "contract_months",
    "late_payments",
    "usage_gb",
    "churned",
]

SPLITS = [
    # (file name, number of rows, population, seed offset)
    ("train.csv", 800, "reference", 0),
    ("validation.csv", 200, "reference", 1),
    ("test-shifted.csv", 200, "shifted", 2),
]

# Population parameters. "shifted" describes newer customers on pricier plans
# who call support more often (covariate shift); their churn behaviour also
# differs a little (concept shift): the signal is noisier (logit_scale < 1),
# support calls weigh relatively more and the base log-odds are lower.
POPULATIONS = {
    "reference": {
        "tenure_max": 72,
        "contract_probs": (0.50, 0.30, 0.20),  # 1, 12, 24 month contracts
        "charges_mean": 65.0,
        "charges_sd": 20.0,
        "support_p": 0.15,
        "late_p": 0.08,
        "logit_shift": 0.0,
        "logit_scale": 1.0,
        "support_scale": 1.0,
    },
    "shifted": {
        "tenure_max": 40,
        "contract_probs": (0.65, 0.25, 0.10),
        "charges_mean": 80.0,
        "charges_sd": 22.0,
        "support_p": 0.25,
        "late_p": 0.12,
        "logit_shift": -1.2,
        "logit_scale": 0.75,
        "support_scale": 1.3,
    },
}


def normal(rng: random.Random, mean: float, sd: float) -> float:
    """Approximately normal variate (Irwin-Hall, sum of 12 uniforms).

    Uses only additions of ``rng.random()`` values, so it is bit-for-bit
    reproducible across platforms and Python versions.
    """
    return mean + sd * (sum(rng.random() for _ in range(12)) - 6.0)


def binomial(rng: random.Random, n: int, p: float) -> int:
    return sum(1 for _ in range(n) if rng.random() < p)


def clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def true_logit(row: dict[str, float], pop: dict) -> float:
    """Ground-truth churn log-odds for one customer."""
    t = row["tenure_months"] - 30.0
    c = row["monthly_charges"] - 65.0
    s = row["support_calls"]
    z = (
        -1.2
        - 0.070 * t
        + 0.045 * c
        + pop["support_scale"] * (0.30 * s + 0.20 * s * s)
        - 0.110 * (row["contract_months"] - 8.0)
        + 0.70 * row["late_payments"]
        - 0.025 * (row["usage_gb"] - 45.0)
        + 0.0025 * c * t
    )
    return pop["logit_shift"] + pop["logit_scale"] * z


def make_row(rng: random.Random, pop: dict) -> dict[str, float]:
    tenure = rng.randint(1, pop["tenure_max"])
    u = rng.random()
    p1, p12, _ = pop["contract_probs"]
    contract = 1 if u < p1 else 12 if u < p1 + p12 else 24
    charges = round(clamp(normal(rng, pop["charges_mean"], pop["charges_sd"]), 18.0, 130.0), 2)
    support = binomial(rng, 10, pop["support_p"])
    late = binomial(rng, 6, pop["late_p"])
    usage = round(clamp(normal(rng, 15.0 + 0.45 * charges, 12.0), 0.0, 200.0), 2)
    row = {
        "tenure_months": tenure,
        "monthly_charges": charges,
        "support_calls": support,
        "contract_months": contract,
        "late_payments": late,
        "usage_gb": usage,
    }
    row["churned"] = 1 if rng.random() < sigmoid(true_logit(row, pop)) else 0
    return row


def format_row(row: dict[str, float]) -> str:
    return ",".join(
        [
            str(row["tenure_months"]),
            f"{row['monthly_charges']:.2f}",
            str(row["support_calls"]),
            str(row["contract_months"]),
            str(row["late_payments"]),
            f"{row['usage_gb']:.2f}",
            str(row["churned"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED, help=f"base seed (default {SEED})")
    parser.add_argument("--out-dir", type=Path, default=HERE / "data", help="output directory")
    args = parser.parse_args()

    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, n_rows, population, offset in SPLITS:
        rng = random.Random(args.seed * 1000 + offset)
        pop = POPULATIONS[population]
        lines = [",".join(COLUMNS)]
        positives = 0
        for _ in range(n_rows):
            row = make_row(rng, pop)
            positives += row["churned"]
            lines.append(format_row(row))
        path = args.out_dir / name
        # newline="\n" keeps the bytes identical on Windows too.
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("\n".join(lines) + "\n")
        print(f"wrote {path.name}: {n_rows} rows, churn rate {positives / n_rows:.3f}")


if __name__ == "__main__":
    main()
