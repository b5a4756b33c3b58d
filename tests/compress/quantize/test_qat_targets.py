"""The shipped model's INT8 targets and QAT's, asserted on one default `--qat` run: it quantizes with the default
settings and calibration as the main job does (the same quantize and evaluate functions write the PTQ IR beside
QAT, model_int8_ptq.xml), then trains. A file of its own, scheduled first (tests/conftest.py), so that
pytest-xdist's loadfile runs it beside the rest of the suite."""

from __future__ import annotations

import pytest

from compress import quantize
from compress.report import QuantReport, read_report
from compress.targets import QAT_EXECUTED_NODES, TARGET_MAX_TOP1_DROP_PT, TARGET_MIN_AGREEMENT_PCT, TARGET_MIN_SQNR_DB

# QAT against the PTQ beside it, f32 hint (where the bounds hold across CPUs: only the quantizers' error), on the
# 800 proxy-val crops. Measured on the converged proxy (AMX): QAT 32.78 dB against PTQ's 31.86 (+0.92); the
# measurements behind these bounds: docs/results/qat.md
QAT_MIN_SQNR_DB = 31.5
QAT_MIN_GAIN_DB = 0.5
QAT_MIN_AGREEMENT_PCT = 98.5


@pytest.fixture(scope="module")
def default_qat(tmp_path_factory) -> QuantReport:
    out = tmp_path_factory.mktemp("qat") / "run"
    assert quantize.main(["--qat", "--benchmark-seconds", "0", "--isa-matrix", "none", "--out", str(out)]) == 0
    return read_report(out)


@pytest.mark.slow
def test_the_main_jobs_int8_meets_its_targets_at_the_f32_hint(default_qat) -> None:
    """The default settings' PTQ on the main job's own data (300 calibration images, the 800 proxy-val crops),
    at the f32 hint (the non-quantized ops in float32, so only the quantizers' error is measured)."""
    c = default_qat.qat.ptq_f32_hint_vs_fp32
    assert default_qat.calibration.n == 300 and c.n == 800 and c.source == "proxy-val"
    assert c.top1_drop <= TARGET_MAX_TOP1_DROP_PT
    assert c.top1_agreement >= TARGET_MIN_AGREEMENT_PCT
    assert c.sqnr_db >= TARGET_MIN_SQNR_DB


@pytest.mark.slow
def test_default_qat_beats_ptq_of_the_same_settings(default_qat) -> None:
    """QAT's logit SQNR against FP32 at the f32 hint is at least QAT_MIN_SQNR_DB and QAT_MIN_GAIN_DB above the PTQ
    measured beside it, its agreement at least QAT_MIN_AGREEMENT_PCT, and its IR executes no more nodes."""
    rep = default_qat
    qat, ptq = rep.int8_f32_hint_vs_fp32, rep.qat.ptq_f32_hint_vs_fp32
    assert qat.n == ptq.n == 800 and qat.source == "proxy-val"
    assert qat.sqnr_db >= QAT_MIN_SQNR_DB and qat.sqnr_db >= ptq.sqnr_db + QAT_MIN_GAIN_DB, (qat.sqnr_db, ptq.sqnr_db)
    assert qat.top1_agreement >= QAT_MIN_AGREEMENT_PCT, (qat.top1_agreement, ptq.top1_agreement)
    nodes = [t for t in rep.targets if t.id == QAT_EXECUTED_NODES.id]
    assert len(nodes) == 1 and nodes[0].met, nodes
