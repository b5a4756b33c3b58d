"""What to deploy: the fastest artifact that holds its accuracy bound, a later (more compressed) one only when it is
faster by FASTER_X, and the line that says why the others were passed over."""

from __future__ import annotations

import pytest

from compress.choice import FASTER_X, Candidate, choose
from compress.report import SpeedReport, SpeedRow


def speed(**rows: tuple[float, float]) -> SpeedReport:
    """Three rounds per row: (batch-1 latency ms, batch-8 images/s), with a little noise that cancels in ratios."""
    out = [SpeedRow(label.replace("_", " "), [lat * f for f in (1.0, 1.02, 0.98)], [1e3 / lat] * 3,
                    [fps * f for f in (1.0, 1.02, 0.98)]) for label, (lat, fps) in rows.items()]
    return SpeedReport("CPU", "avx2 amx_int8", "AMX-INT8/BF16", "2026.4", 2, "bf16", 8, 0.2, 3, out)


FP32 = Candidate("deploy FP32", "model_fp32.xml", 90.5)
INT8 = Candidate("INT8", "model_int8.xml", 90.4)


def test_int8_that_buys_no_speed_is_not_deployed() -> None:
    sp = speed(plain_FP32=(6.0, 500.0), deploy_FP32=(5.9, 505.0), INT8=(5.9, 506.0))
    c = choose(sp, [FP32, INT8], "proxy-val (800 images)")
    assert (c.label, c.artifact, c.top1) == ("deploy FP32", "model_fp32.xml", 90.5)
    assert "INT8 (model_int8.xml) is not faster here (1.00x latency, 1.00x batch 8 against deploy FP32)" in c.line
    assert c.line.startswith("deploy on this CPU (AMX-INT8/BF16, bf16): model_fp32.xml (deploy FP32): 5.90 ms")


def test_a_faster_int8_is_deployed() -> None:
    sp = speed(plain_FP32=(6.0, 500.0), deploy_FP32=(5.9, 505.0), INT8=(4.0, 700.0))
    c = choose(sp, [FP32, INT8], "proxy-val")
    assert c.artifact == "model_int8.xml"
    assert c.latency_x == pytest.approx(1.5) and c.fps_bn_x == pytest.approx(1.4)
    assert "deploy FP32 is slower" in c.line


@pytest.mark.parametrize("gain", [FASTER_X - 0.01, FASTER_X + 0.01])
def test_the_threshold_is_the_geometric_mean_of_both_ratios(gain: float) -> None:
    sp = speed(plain_FP32=(6.0, 500.0), deploy_FP32=(6.0, 500.0), INT8=(6.0 / gain, 500.0 * gain))
    assert choose(sp, [FP32, INT8], "v").label == ("INT8" if gain > FASTER_X else "deploy FP32")


def test_an_artifact_that_misses_its_accuracy_bound_is_passed_over_however_fast() -> None:
    sp = speed(plain_FP32=(6.0, 500.0), deploy_FP32=(5.9, 505.0), INT8=(2.0, 1500.0))
    bad = Candidate("INT8", "model_int8.xml", 88.0, "agreement with FP32 97.00% < 99")
    c = choose(sp, [FP32, bad], "v")
    assert c.artifact == "model_fp32.xml"
    assert "INT8 (model_int8.xml) misses its accuracy bound: agreement with FP32 97.00% < 99" in c.line


def test_with_no_artifact_holding_its_bound_the_model_stays_unchanged() -> None:
    sp = speed(plain_FP32=(6.0, 500.0), pruned_deploy_FP32=(4.0, 800.0))
    c = choose(sp, [Candidate("pruned deploy FP32", "model_fp32.xml", 85.0, "top-1 drop 5.50 pt > 0.3")], "v")
    assert c.artifact is None and c.label == "plain FP32" and c.latency_x == pytest.approx(1.0)
    assert "the model unchanged (plain FP32)" in c.line and "top-1 drop 5.50 pt" in c.line
