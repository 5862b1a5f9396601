#!/usr/bin/env python3
"""Train the churn classifier: logistic regression with L2 regularisation.

Full-batch gradient descent on standardised features, starting from zero
weights, so training is fully deterministic. Writes

* ``model/model.safetensors`` -- ``weight``, ``bias``, ``feature_mean`` and
  ``feature_std`` as float32 tensors (safetensors format, written by hand)
* ``model/config.json``       -- architecture, features and hyperparameters

Hyperparameters are taken from the command line, then from environment
variables, then from the defaults of the selected variant:

    --variant        CHURN_VARIANT        baseline | v2      (default baseline)
    --epochs         CHURN_EPOCHS         baseline 300,  v2 600
    --learning-rate  CHURN_LEARNING_RATE  baseline 0.1,  v2 0.2
    --l2             CHURN_L2             baseline 0.01, v2 0.001

The ``v2`` variant adds two engineered features (a charges x tenure
interaction and squared support calls).

Standard library only.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent

INPUT_COLUMNS = [
    "tenure_months",
    "monthly_charges",
    "support_calls",
    "contract_months",
    "late_payments",
    "usage_gb",
]
LABEL = "churned"

# Engineered features: each one is the product of the listed input columns.
ENGINEERED = {
    "charges_x_tenure": ["monthly_charges", "tenure_months"],
    "support_calls_sq": ["support_calls", "support_calls"],
}

VARIANTS = {
    "baseline": {
        "features": INPUT_COLUMNS,
        "defaults": {"epochs": 300, "learning_rate": 0.1, "l2": 0.01},
    },
    "v2": {
        "features": [*INPUT_COLUMNS, "charges_x_tenure", "support_calls_sq"],
        "defaults": {"epochs": 600, "learning_rate": 0.2, "l2": 0.001},
    },
}


# --------------------------------------------------------------------------
# data


def load_csv(path: Path) -> list[dict[str, float]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def feature_definitions(names: list[str]) -> dict[str, list[str]]:
    """Map every model feature to the input columns whose product it is."""
    return {name: ENGINEERED.get(name, [name]) for name in names}


def build_matrix(rows, definitions, names):
    matrix = []
    for row in rows:
        vec = []
        for name in names:
            value = 1.0
            for column in definitions[name]:
                value *= row[column]
            vec.append(value)
        matrix.append(vec)
    return matrix


# --------------------------------------------------------------------------
# model


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def standardise(matrix):
    n, d = len(matrix), len(matrix[0])
    mean = [sum(r[j] for r in matrix) / n for j in range(d)]
    std = []
    for j in range(d):
        var = sum((r[j] - mean[j]) ** 2 for r in matrix) / n
        std.append(math.sqrt(var) if var > 1e-12 else 1.0)
    scaled = [[(r[j] - mean[j]) / std[j] for j in range(d)] for r in matrix]
    return scaled, mean, std


def fit(x, y, epochs: int, learning_rate: float, l2: float):
    n, d = len(x), len(x[0])
    w = [0.0] * d
    b = 0.0
    for _ in range(epochs):
        grad_w = [0.0] * d
        grad_b = 0.0
        for xi, yi in zip(x, y, strict=True):
            err = sigmoid(b + sum(wj * xj for wj, xj in zip(w, xi, strict=True))) - yi
            grad_b += err
            for j in range(d):
                grad_w[j] += err * xi[j]
        for j in range(d):
            w[j] -= learning_rate * (grad_w[j] / n + l2 * w[j])
        b -= learning_rate * grad_b / n
    return w, b


def regularised_loss(x, y, w, b, l2: float) -> float:
    eps = 1e-15
    total = 0.0
    for xi, yi in zip(x, y, strict=True):
        p = sigmoid(b + sum(wj * xj for wj, xj in zip(w, xi, strict=True)))
        p = min(max(p, eps), 1.0 - eps)
        total -= yi * math.log(p) + (1.0 - yi) * math.log(1.0 - p)
    return total / len(x) + 0.5 * l2 * sum(wj * wj for wj in w)


# --------------------------------------------------------------------------
# serialisation


def write_safetensors(path: Path, tensors: dict[str, list[float]]) -> None:
    """Write 1-D float32 tensors in the safetensors format.

    Layout: 8-byte little-endian header length, JSON header (sorted keys,
    compact, space-padded to a multiple of 8 bytes), raw little-endian data.
    """
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        values = tensors[name]
        blob = struct.pack(f"<{len(values)}f", *values)
        header[name] = {
            "dtype": "F32",
            "shape": [len(values)],
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    raw = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for blob in blobs:
            fh.write(blob)


def write_json(path: Path, obj) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(json.dumps(obj, sort_keys=True, indent=2) + "\n")


# --------------------------------------------------------------------------


def env_or(name: str, cast, fallback):
    value = os.environ.get(name)
    return cast(value) if value not in (None, "") else fallback


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variant",
        choices=sorted(VARIANTS),
        default=os.environ.get("CHURN_VARIANT") or "baseline",
        help="model variant (env CHURN_VARIANT, default baseline)",
    )
    parser.add_argument("--epochs", type=int, help="gradient-descent epochs (env CHURN_EPOCHS)")
    parser.add_argument("--learning-rate", type=float, help="step size (env CHURN_LEARNING_RATE)")
    parser.add_argument("--l2", type=float, help="L2 penalty on the weights (env CHURN_L2)")
    parser.add_argument(
        "--data", type=Path, default=HERE / "data" / "train.csv", help="training CSV"
    )
    parser.add_argument("--model-dir", type=Path, default=HERE / "model", help="output directory")
    args = parser.parse_args()
    if args.variant not in VARIANTS:
        parser.error(
            f"unknown variant {args.variant!r} (choose from {', '.join(sorted(VARIANTS))})"
        )
    defaults = VARIANTS[args.variant]["defaults"]
    if args.epochs is None:
        args.epochs = env_or("CHURN_EPOCHS", int, defaults["epochs"])
    if args.learning_rate is None:
        args.learning_rate = env_or("CHURN_LEARNING_RATE", float, defaults["learning_rate"])
    if args.l2 is None:
        args.l2 = env_or("CHURN_L2", float, defaults["l2"])
    if args.epochs < 1 or args.learning_rate <= 0 or args.l2 < 0:
        parser.error("need epochs >= 1, learning-rate > 0 and l2 >= 0")
    return args


def main() -> None:
    args = parse_args()
    names = VARIANTS[args.variant]["features"]
    definitions = feature_definitions(names)

    rows = load_csv(args.data)
    y = [row[LABEL] for row in rows]
    x, mean, std = standardise(build_matrix(rows, definitions, names))
    w, b = fit(x, y, args.epochs, args.learning_rate, args.l2)
    loss = regularised_loss(x, y, w, b, args.l2)

    args.model_dir.mkdir(parents=True, exist_ok=True)
    write_safetensors(
        args.model_dir / "model.safetensors",
        {"weight": w, "bias": [b], "feature_mean": mean, "feature_std": std},
    )
    write_json(
        args.model_dir / "config.json",
        {
            "architecture": "logistic-regression",
            "feature_definitions": definitions,
            "feature_names": names,
            "format": "safetensors",
            "hyperparameters": {
                "epochs": args.epochs,
                "l2": args.l2,
                "learning_rate": args.learning_rate,
            },
            "input_columns": INPUT_COLUMNS,
            "label": LABEL,
            "n_features": len(names),
            "precision": "float32",
            "standardisation": "z-score (feature_mean, feature_std from train.csv)",
            "threshold": 0.5,
            "variant": args.variant,
        },
    )
    print(
        f"variant={args.variant} epochs={args.epochs} learning_rate={args.learning_rate} "
        f"l2={args.l2} rows={len(rows)} features={len(names)} train_loss={loss:.4f}"
    )
    for name, weight in zip(names, w, strict=True):
        print(f"  {name:<18} {weight:+.4f}")
    print(f"  {'(bias)':<18} {b:+.4f}")


if __name__ == "__main__":
    main()
