"""Issue 29's QAT targets, asserted by the default QAT run (a file of its own so that pytest-xdist's loadfile
runs it beside the rest of the suite)."""

from __future__ import annotations

import pytest

from compress import quantize
from compress.report import read_report

# measured bounds (f32 hint, where they hold across CPUs: only the quantizers' error). AVX-512 VNNI/BF16,
# 2026-12-03. Selection set (3200): QAT 36.40 dB against PTQ's 34.55 dB (+1.85), 99.38% against 99.28%.
# proxy-val (800): the SQNR bounds held; agreement 98.875% (9 differ) against PTQ's 99.375% (5): QAT buys logit
# SQNR, not (yet) agreement, so agreement is held to its measured bound, not to PTQ's
QAT_MIN_SQNR_DB = 35.5
QAT_MIN_GAIN_DB = 1.0
QAT_MIN_AGREEMENT_PCT = 98.5


@pytest.mark.slow
def test_default_qat_beats_ptq_of_the_same_settings(tmp_path) -> None:
    """The default `--qat` run on proxy-val: QAT's logit SQNR against FP32 at the f32 hint is at least
    QAT_MIN_SQNR_DB and QAT_MIN_GAIN_DB above the PTQ measured beside it, its agreement at least
    QAT_MIN_AGREEMENT_PCT, and its IR executes no more nodes."""
    out = tmp_path / "qat"
    assert quantize.main(["--qat", "--benchmark-seconds", "0", "--isa-matrix", "none", "--out", str(out)]) == 0
    rep = read_report(out)
    qat, ptq = rep.int8_f32_hint_vs_fp32, rep.qat.ptq_f32_hint_vs_fp32
    assert qat.n == ptq.n == 800 and qat.source == "proxy-val"
    assert qat.sqnr_db >= QAT_MIN_SQNR_DB and qat.sqnr_db >= ptq.sqnr_db + QAT_MIN_GAIN_DB, (qat.sqnr_db, ptq.sqnr_db)
    assert qat.top1_agreement >= QAT_MIN_AGREEMENT_PCT, (qat.top1_agreement, ptq.top1_agreement)
    nodes = [t for t in rep.targets if t.metric.startswith("QAT IR executed nodes")]
    assert len(nodes) == 1 and nodes[0].met, nodes
