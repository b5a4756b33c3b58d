"""Agreement metrics between a model under test and its reference (NumPy; no framework imports)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .report import GraphAgreement, Int8Comparison


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


@dataclass(frozen=True)
class Paired:
    """Two models on the same labelled images: the images only the teacher classifies right (lost) and only the
    student does (gained). Their difference is the top-1 change; only these images carry evidence about it."""

    n: int
    lost: int
    gained: int

    @property
    def p_value(self) -> float:
        """Exact McNemar test (two-sided): how likely a split at least this uneven is when neither model is better."""
        from scipy.stats import binomtest

        flips = self.lost + self.gained
        return 1.0 if flips == 0 else float(binomtest(min(self.lost, self.gained), flips, 0.5).pvalue)

    def __str__(self) -> str:
        return (f"on the same {self.n} images {self.lost} lost, {self.gained} gained (exact McNemar p "
                f"{self.p_value:.2f})")


def paired(teacher_logits: np.ndarray, student_logits: np.ndarray, labels: np.ndarray) -> Paired:
    t = np.argmax(teacher_logits, axis=1) == labels
    s = np.argmax(student_logits, axis=1) == labels
    return Paired(len(labels), int(np.sum(t & ~s)), int(np.sum(s & ~t)))


def student_gains(p: Paired, student: str) -> str | None:
    """The undertrained-teacher line from the paired test: the student classifies significantly more of the same
    images right (p < 0.05), which compression cannot do to a trained-out teacher. None otherwise."""
    if p.gained <= p.lost or p.p_value >= 0.05:
        return None
    return (f"the {student} beats its uncompressed teacher {p}: the teacher looks undertrained, so the drop "
            "understates what compression costs; fine-tune the teacher the same way to compare")


def student_ahead_within_noise(p: Paired, student: str) -> str | None:
    """The line for a student ahead of its teacher by less than the paired test resolves (a negative drop, p >=
    0.05): the teacher is not shown to be undertrained, and the drop reads as no change. None otherwise (behind,
    level, or ahead significantly: then student_gains' line)."""
    if p.gained <= p.lost or p.p_value < 0.05:
        return None
    return (f"the {student} is ahead of its uncompressed teacher {p}: within what these images resolve, so the "
            "negative drop is no evidence of an undertrained teacher (python -m tools.check_converged tests the "
            "teacher itself)")


def undertrained_teacher(teacher_top1: float | None, student_top1: float | None, n: int, student: str
                         ) -> str | None:
    """One line when a compressed student's top-1 lies above its teacher's 95% Wilson interval on the same n
    images: compression cannot add accuracy to a trained-out model, so the teacher looks undertrained and the drop
    understates what compression costs. None when the student does not beat it by more than the evaluation
    resolves (or there are no labels)."""
    if teacher_top1 is None or student_top1 is None or n == 0:
        return None
    high = agreement_ci95(round(teacher_top1 * n / 100), n)[1]
    if student_top1 <= high:
        return None
    return (f"the {student} ({student_top1:.2f}%) beats its uncompressed teacher ({teacher_top1:.2f}%) by "
            f"{student_top1 - teacher_top1:.2f} pt, beyond the teacher's 95% interval on {n} images (to "
            f"{high:.2f}%): the teacher looks undertrained, so the drop understates what compression costs; "
            "fine-tune the teacher the same way to compare")


def compare_int8(fp32_logits: np.ndarray, int8_logits: np.ndarray, labels: np.ndarray | None,
                 source: str) -> Int8Comparison:
    """INT8 logits against FP32 ones on the same images: top-1/top-5 of both (with labels), agreement, SQNR."""
    n = len(fp32_logits)
    differ = top1_changes(int8_logits, fp32_logits)
    acc = {(m, k): topk_accuracy(lg, labels, k) if labels is not None else None
           for m, lg in (("fp32", fp32_logits), ("int8", int8_logits)) for k in (1, 5)}
    drop = None if labels is None else acc["fp32", 1] - acc["int8", 1]
    return Int8Comparison(n, source, labels is not None, acc["fp32", 1], acc["fp32", 5], acc["int8", 1],
                          acc["int8", 5], drop, 100.0 * (n - differ) / n, cosine(int8_logits, fp32_logits),
                          sqnr_db(int8_logits, fp32_logits), differ, agreement_ci95(n - differ, n))


def graph_agreement(got: np.ndarray, graph_logits: np.ndarray, device: str, precision: str,
                    layers: list[tuple[str, float]] | None = None,
                    graph_f32_sqnr_db: float | None = None) -> GraphAgreement:
    """A runtime's INT8 logits against the NumPy run of the same IR (float64), with optional per-layer SQNRs."""
    got = np.asarray(got, np.float64)
    layers = layers or []
    n, differ = len(got), top1_changes(got, graph_logits)
    return GraphAgreement(device, precision, n, max_abs(got, graph_logits), sqnr_db(got, graph_logits),
                          100.0 * (n - differ) / n, differ, layers,
                          min(layers, key=lambda t: t[1])[0] if layers else None, graph_f32_sqnr_db)
