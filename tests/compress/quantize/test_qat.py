"""Quantization-aware training (compress.quantize --qat): a short run through every INT8 stage, and what it
refuses before any work."""

from __future__ import annotations

import json

import pytest

from compress import quantize
from compress.errors import InputError
from compress.quantize import qat
from compress.settings import TARGET_MIN_GRAPH_SQNR_DB, QuantSettings
from compress.tolerances import INT8_RUNTIME_MARGIN_DB

SHORT = ["--qat", "--qat-steps", "6", "--qat-batch", "4", "--subset-size", "8", "--val-limit", "32",
         "--benchmark-seconds", "0", "--fast-bias-correction", "--activation-range", "minmax", "--isa-matrix", "none"]


def test_short_qat_run_goes_through_every_int8_stage(tmp_path) -> None:
    """The trained IR holds FakeQuantize, the NumPy executor runs it and OpenVINO agrees with that run within the
    INT8 runtime margin; training moved the quantizer ranges; PTQ of the same settings is beside it."""
    out = tmp_path / "qat"
    assert quantize.main([*SHORT, "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    q = rep["qat"]
    assert {"model_int8.xml", "model_int8_ptq.xml", "qat_loss.png"} <= {p.name for p in out.iterdir()}
    assert rep["quantizers"] > 50 and q["ptq_quantizers"] > 50
    assert len(q["losses"]) == 6 and q["data"]["name"] == "proxy-train"
    assert q["ranges_changed"] > 0 and q["max_range_change"] > 0
    graph = rep["int8_runtime_vs_graph"][0]
    assert graph["precision"] == "f32" and graph["sqnr_db"] >= TARGET_MIN_GRAPH_SQNR_DB - INT8_RUNTIME_MARGIN_DB
    assert q["ptq_vs_fp32"]["n"] == rep["int8_vs_fp32"]["n"] == 32
    assert "Quantization-aware training against PTQ" in (out / "report.md").read_text()


def test_qat_refuses_what_it_cannot_translate() -> None:
    with pytest.raises(InputError, match="OpenVINO node names"):
        qat.torch_ignored_scope(QuantSettings(ignored_scope=("name:foo",)))
    with pytest.raises(InputError, match="no torch counterpart"):
        qat.torch_ignored_scope(QuantSettings(ignored_scope=("type:GroupConvolution",)))
    scope = qat.torch_ignored_scope(QuantSettings())
    assert scope.patterns == [".*stem.*"] and set(scope.types) == {"matmul", "softmax", "mul"}


def test_qat_options_without_qat_are_refused(capsys) -> None:
    assert quantize.main(["--qat-steps", "5"]) == 2
    assert "--qat-steps applies with --qat only" in capsys.readouterr().err
