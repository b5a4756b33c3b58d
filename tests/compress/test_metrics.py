"""The agreement metrics against values computed by hand: a wrong formula would silently loosen every threshold
that uses it (SQNR targets, the INT8 tolerances, the cosine in reports)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compress.metrics import cosine, max_abs, rel_max, sqnr_db, top1_changes, topk_accuracy


def test_sqnr_is_ten_log10_of_signal_over_noise_power() -> None:
    ref = np.array([[1.0, 2.0, 3.0]])  # power 1 + 4 + 9 = 14
    a = ref + np.array([[0.1, -0.1, 0.0]])  # noise power 0.01 + 0.01 = 0.02
    assert sqnr_db(a, ref) == pytest.approx(28.450980400142567, abs=1e-12)  # 10 log10(700)
    assert sqnr_db(2 * ref, ref) == pytest.approx(0.0, abs=1e-12)  # noise as strong as the signal: 0 dB
    assert sqnr_db(ref, ref) == math.inf


def test_cosine_is_the_mean_of_per_row_cosines() -> None:
    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    ref = np.array([[2.0, 0.0], [1.0, 0.0]])
    assert cosine(a, ref) == pytest.approx((1.0 + 1 / math.sqrt(2)) / 2, abs=1e-12)  # 0.853553...
    assert cosine(-a, ref) == pytest.approx(-(1.0 + 1 / math.sqrt(2)) / 2, abs=1e-12)


def test_max_and_relative_differences() -> None:
    ref = np.array([[1.0, -4.0]])
    a = np.array([[1.5, -4.0]])
    assert max_abs(a, ref) == 0.5 and rel_max(a, ref) == 0.125  # 0.5 / max |ref| = 0.5 / 4


def test_top1_changes_and_topk_accuracy() -> None:
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])  # argmax 1, 0, 2
    other = np.array([[0.9, 0.1, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])  # argmax 0, 0, 2
    assert top1_changes(logits, other) == 1
    labels = np.array([1, 1, 1])
    assert topk_accuracy(logits, labels, 1) == pytest.approx(100 / 3)
    assert topk_accuracy(logits, labels, 2) == pytest.approx(100.0)  # label 1 is second in rows 2 and 3


def test_speed_ratios_spread_and_unstable_by_hand() -> None:
    """Per-round ratios 2.0, 2.5, 1.6 (latency base/own) have median 2.0 and spread (2.5 - 1.6) / 2.0 =
    0.45: unstable; throughputs with per-round ratios 1.1, 1.0, 1.05 have spread 0.1 / 1.05, under 15%: stable."""
    from compress.report import SpeedReport, SpeedRow

    base = SpeedRow("plain FP32", [20.0, 25.0, 16.0], [100.0, 100.0, 100.0], [80.0, 80.0, 80.0])
    own = SpeedRow("INT8", [10.0, 10.0, 10.0], [110.0, 100.0, 105.0], [88.0, 80.0, 84.0])
    sp = SpeedReport("CPU", "avx2", "AVX2", "2026.4", 2, "f32", 8, 0.5, 3, [base, own])
    q = sp.ratios("INT8")
    assert q["latency"] == pytest.approx(2.0) and q["latency_spread"] == pytest.approx(0.45)
    assert q["fps_b1"] == pytest.approx(1.05) and q["fps_b1_spread"] == pytest.approx(0.1 / 1.05)
    assert sp.unstable("INT8") == ["latency"] and sp.unstable("plain FP32") == []


def test_a_student_beyond_its_teachers_interval_is_called_out() -> None:
    """800 images, teacher 75.62%: its 95% Wilson interval reaches about 78.5%; a pruned student at 80.50% is beyond
    it (the case that hid a pruning loss), one at 77.00% is not, and without labels nothing is said."""
    from compress.metrics import agreement_ci95, undertrained_teacher

    high = agreement_ci95(605, 800)[1]
    assert 78.0 < high < 79.0
    line = undertrained_teacher(75.625, 80.5, 800, "pruned model")
    assert line is not None and "beats its uncompressed teacher (75.62%) by 4.88 pt" in line
    assert "undertrained" in line and "fine-tune the teacher the same way" in line
    assert undertrained_teacher(75.625, 77.0, 800, "pruned model") is None
    assert undertrained_teacher(75.625, high - 0.01, 800, "x") is None
    assert undertrained_teacher(75.625, high + 0.01, 800, "x") is not None
    assert undertrained_teacher(None, 80.5, 800, "x") is None


def test_paired_counts_the_images_only_one_model_gets_right() -> None:
    from compress.metrics import paired, student_gains

    labels = np.array([0, 1, 2, 0, 1, 2])
    teacher = np.eye(3)[[0, 1, 2, 1, 1, 0]]  # right on images 0, 1, 2, 4
    student = np.eye(3)[[0, 2, 2, 0, 0, 2]]  # right on images 0, 2, 3, 5
    p = paired(teacher, student, labels)
    assert (p.n, p.lost, p.gained) == (6, 2, 2) and p.p_value == 1.0
    assert student_gains(p, "pruned model") is None


@pytest.mark.parametrize(("lost", "gained", "p_value", "fires"), [
    (0, 6, 2 * 0.5 ** 6, True),  # 0.031: six gained, none lost
    (0, 5, 2 * 0.5 ** 5, False),  # 0.0625: not resolved by these images
    (6, 0, 2 * 0.5 ** 6, False),  # a significant loss is a drop, not an undertrained teacher
    (5, 6, 1.0, False),
])
def test_the_paired_line_fires_on_a_significant_gain_only(lost, gained, p_value, fires) -> None:
    from compress.metrics import Paired, student_gains

    p = Paired(800, lost, gained)
    assert p.p_value == pytest.approx(min(1.0, p_value))
    line = student_gains(p, "pruned model")
    assert (line is not None) == fires
    if fires:
        assert f"{lost} lost, {gained} gained" in line and "undertrained" in line


@pytest.mark.parametrize(("lost", "gained", "fires"), [
    (9, 14, True),  # ahead, p 0.40: a negative drop these images do not resolve
    (0, 5, True),  # p 0.0625, still not resolved
    (0, 6, False),  # p 0.031: student_gains' undertrained-teacher line instead
    (5, 5, False),  # level
    (14, 9, False),  # behind: a drop
])
def test_a_student_ahead_within_noise_gets_its_own_line(lost, gained, fires) -> None:
    """Every negative drop gets one line: the undertrained-teacher warning where the paired test resolves the gain,
    else this one, which says the gain is noise; never both."""
    from compress.metrics import Paired, student_ahead_within_noise, student_gains

    p = Paired(800, lost, gained)
    line = student_ahead_within_noise(p, "pruned model")
    assert (line is not None) == fires
    if fires:
        assert f"{lost} lost, {gained} gained" in line and "no evidence of an undertrained teacher" in line
    assert line is None or student_gains(p, "pruned model") is None
    assert fires or gained <= lost or student_gains(p, "pruned model") is not None
