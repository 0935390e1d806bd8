"""Agreement metrics for 0/1/2 scores: confusion, recall, quadratic weighted kappa, ECE."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np


def confusion(y: np.ndarray, pred: np.ndarray, k: int = 3) -> np.ndarray:
    """Rows: true score, columns: predicted score."""
    cm = np.zeros((k, k), dtype=int)
    for a, b in zip(y, pred, strict=True):
        cm[int(a), int(b)] += 1
    return cm


def quadratic_weighted_kappa(y: np.ndarray, pred: np.ndarray, k: int = 3) -> float:
    cm = confusion(y, pred, k).astype(float)
    n = cm.sum()
    if n == 0:
        return float("nan")
    w = np.array([[(i - j) ** 2 / (k - 1) ** 2 for j in range(k)] for i in range(k)])
    expected = np.outer(cm.sum(1), cm.sum(0)) / n
    den = float((w * expected).sum())
    return float(1.0 - (w * cm).sum() / den) if den > 0 else 1.0


def expected_calibration_error(y: np.ndarray, prob: np.ndarray, bins: int = 10) -> float:
    """ECE of the top-class probability over ``bins`` equal-width bins."""
    conf = prob.max(axis=1)
    pred = prob.argmax(axis=1)
    total = 0.0
    for lo, hi in itertools.pairwise(np.linspace(0, 1, bins + 1)):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += float(m.mean() * abs((pred[m] == y[m]).mean() - conf[m].mean()))
    return total


def summarize(y: np.ndarray, pred: np.ndarray, prob: np.ndarray | None = None) -> dict[str, Any]:
    """accuracy, qwk, recall per class, confusion (and ECE when probabilities are given)."""
    y = np.asarray(y, dtype=int)
    pred = np.asarray(pred, dtype=int)
    cm = confusion(y, pred)
    out: dict[str, Any] = {
        "n": len(y),
        "accuracy": round(float((pred == y).mean()), 4) if len(y) else None,
        "qwk": round(quadratic_weighted_kappa(y, pred), 4),
        "recall": [round(float(cm[i, i] / cm[i].sum()), 4) if cm[i].sum() else None for i in range(3)],
        "confusion": cm.tolist(),
    }
    if prob is not None and len(y):
        out["ece"] = round(expected_calibration_error(y, np.asarray(prob)), 4)
    return out
