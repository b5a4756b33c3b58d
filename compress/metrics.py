"""Agreement metrics between a model under test and its reference (NumPy; no framework imports)."""

from __future__ import annotations

import numpy as np


def max_abs(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(ref, np.float64)).max())


def rel_max(a: np.ndarray, ref: np.ndarray) -> float:
    """max |a - ref| / max |ref|: the float32 twin criterion."""
    return max_abs(a, ref) / max(float(np.abs(ref).max()), 1e-30)


def sqnr_db(a: np.ndarray, ref: np.ndarray) -> float:
    """Signal-to-quantisation-noise ratio 10 log10(|ref|^2 / |a - ref|^2) in dB (inf when equal)."""
    ref = np.asarray(ref, np.float64)
    noise = float(np.sum((np.asarray(a, np.float64) - ref) ** 2))
    return float("inf") if noise == 0 else float(10 * np.log10(float(np.sum(ref ** 2)) / noise))


def cosine(a: np.ndarray, ref: np.ndarray) -> float:
    """Mean per-sample cosine similarity of logit vectors [N, classes]."""
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    num = np.sum(a * ref, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(ref, axis=1)
    return float(np.mean(num / np.maximum(den, 1e-30)))


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Percent of samples whose label is among the k largest logits (ties broken by class index)."""
    top = np.argsort(-np.asarray(logits), axis=1, kind="stable")[:, :k]
    return float(100.0 * np.mean((top == np.asarray(labels)[:, None]).any(axis=1)))


def top1_changes(a: np.ndarray, ref: np.ndarray) -> int:
    """Number of samples whose arg-max class differs."""
    return int(np.sum(np.argmax(a, axis=1) != np.argmax(ref, axis=1)))


def agreement_ci95(agree: int, n: int) -> tuple[float, float]:
    """95% Wilson interval (percent) of an agreement rate: on a few hundred images one image moves it by
    more than the gap between settings, so reports carry the interval next to the point estimate."""
    from scipy.stats import binomtest

    ci = binomtest(agree, n).proportion_ci(confidence_level=0.95, method="wilson")
    return 100.0 * float(ci.low), 100.0 * float(ci.high)
