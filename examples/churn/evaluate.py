#!/usr/bin/env python3
"""Evaluate the churn classifier on the validation and shifted test sets.

Loads ``model/model.safetensors`` (parsed by hand) and ``model/config.json``,
scores ``data/validation.csv`` and ``data/test-shifted.csv`` and writes
``metrics.json``:

    {"test-shifted": {"accuracy": ..., "auc": ..., "f1": ..., "log_loss": ...},
     "validation":   {...}}

Values are rounded to 4 decimals. AUC is the Mann-Whitney rank statistic
(ties get average ranks). Standard library only.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent

EVAL_SETS = {
    "validation": "data/validation.csv",
    "test-shifted": "data/test-shifted.csv",
}

DTYPES = {"F32": ("f", 4), "F64": ("d", 8)}


def read_safetensors(path: Path) -> dict[str, list[float]]:
    """Read 1-D float tensors from a safetensors file."""
    data = path.read_bytes()
    if len(data) < 8:
        raise ValueError(f"{path}: too short to be a safetensors file")
    (header_len,) = struct.unpack("<Q", data[:8])
    if 8 + header_len > len(data):
        raise ValueError(f"{path}: header length {header_len} exceeds file size")
    header = json.loads(data[8 : 8 + header_len].decode("utf-8"))
    body = data[8 + header_len :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        code, size = DTYPES[info["dtype"]]
        start, end = info["data_offsets"]
        count = math.prod(info["shape"])
        if end - start != count * size or end > len(body):
            raise ValueError(f"{path}: bad data_offsets for tensor {name!r}")
        tensors[name] = list(struct.unpack(f"<{count}{code}", body[start:end]))
    return tensors


def load_csv(path: Path) -> list[dict[str, float]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class Model:
    def __init__(self, model_dir: Path):
        self.config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        if self.config.get("architecture") != "logistic-regression":
            raise ValueError(f"unsupported architecture: {self.config.get('architecture')!r}")
        tensors = read_safetensors(model_dir / "model.safetensors")
        self.names = self.config["feature_names"]
        self.definitions = self.config["feature_definitions"]
        self.weight = tensors["weight"]
        self.bias = tensors["bias"][0]
        self.mean = tensors["feature_mean"]
        self.std = tensors["feature_std"]
        self.threshold = self.config.get("threshold", 0.5)
        for key in ("weight", "mean", "std"):
            if len(getattr(self, key)) != len(self.names):
                raise ValueError(f"tensor {key} does not match {len(self.names)} features")

    def predict_proba(self, row: dict[str, float]) -> float:
        z = self.bias
        for name, w, mu, sd in zip(self.names, self.weight, self.mean, self.std, strict=True):
            value = 1.0
            for column in self.definitions[name]:
                value *= row[column]
            z += w * (value - mu) / sd
        return sigmoid(z)


def auc_mann_whitney(labels: list[int], scores: list[float]) -> float:
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        avg_rank = (i + j) / 2.0 + 1.0  # ranks are 1-based
        for k in range(i, j + 1):
            ranks[order[k]] = avg_rank
        i = j + 1
    n_pos = sum(labels)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y == 1)
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def metrics(labels: list[int], probs: list[float], threshold: float) -> dict[str, float]:
    eps = 1e-15
    preds = [1 if p >= threshold else 0 for p in probs]
    tp = sum(1 for y, p in zip(labels, preds, strict=True) if y == 1 and p == 1)
    fp = sum(1 for y, p in zip(labels, preds, strict=True) if y == 0 and p == 1)
    fn = sum(1 for y, p in zip(labels, preds, strict=True) if y == 1 and p == 0)
    correct = sum(1 for y, p in zip(labels, preds, strict=True) if y == p)
    log_loss = 0.0
    for y, p in zip(labels, probs, strict=True):
        p = min(max(p, eps), 1.0 - eps)
        log_loss -= math.log(p) if y == 1 else math.log(1.0 - p)
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return {
        "accuracy": round(correct / len(labels), 4),
        "auc": round(auc_mann_whitney(labels, probs), 4),
        "f1": round(f1, 4),
        "log_loss": round(log_loss / len(labels), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=HERE / "model", help="model directory")
    parser.add_argument("--output", type=Path, default=HERE / "metrics.json", help="metrics file")
    args = parser.parse_args()

    model = Model(args.model_dir)
    label = model.config.get("label", "churned")
    results = {}
    for split, rel_path in EVAL_SETS.items():
        rows = load_csv(HERE / rel_path)
        labels = [int(row[label]) for row in rows]
        probs = [model.predict_proba(row) for row in rows]
        results[split] = metrics(labels, probs, model.threshold)

    with open(args.output, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(json.dumps(results, sort_keys=True, indent=2) + "\n")
    print(f"variant={model.config.get('variant')}")
    for split in sorted(results):
        m = results[split]
        print(
            f"  {split:<13} accuracy={m['accuracy']:.4f} auc={m['auc']:.4f} "
            f"log_loss={m['log_loss']:.4f} f1={m['f1']:.4f}"
        )


if __name__ == "__main__":
    main()
