"""tools.benchmark: benchmark_app output parsing (recorded runs) and an end-to-end smoke run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compress import quantize
from compress.pipeline import default_precision
from tools import benchmark

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("benchmark_app_*.txt")))
def test_parse_recorded_benchmark_app_output(name: str) -> None:
    text = (DATA / name).read_text()
    stats = benchmark.parse_benchmark_app(text)
    expect = json.loads((DATA / "benchmark_app_expected.json").read_text())[name]
    assert stats == pytest.approx(expect)
    assert stats["min_ms"] <= stats["median_ms"] <= stats["max_ms"]


def test_recorded_outputs_exist() -> None:
    assert len(list(DATA.glob("benchmark_app_*.txt"))) >= 2


def test_parse_rejects_output_without_statistics() -> None:
    with pytest.raises(ValueError, match="no Median latency"):
        benchmark.parse_benchmark_app("[ ERROR ] Input x is dynamic")


def test_benchmark_smoke_tiny_input(tmp_path) -> None:
    run = tmp_path / "q32"
    assert quantize.main(["--input-size", "32", "--subset-size", "8", "--val-limit", "16", "--out", str(run)]) == 0
    out = tmp_path / "bench"
    assert benchmark.main([str(run), "-t", "1", "--rounds", "3", "--python-seconds", "0.3", "--out", str(out)]) == 0
    data = json.loads((out / "benchmark.json").read_text())
    labels = [t["label"] for t in data["targets"]]
    prec = default_precision()
    assert labels == ["q32/fp32 f32", f"q32/fp32 default({prec})", "q32/int8", "q32/onnxruntime fp32",
                      "q32/torch eager fp32", "q32/numpy reference fp32"]
    base = data["targets"][0]
    bf16 = data["targets"][1]
    for t in data["targets"]:
        assert len(t["latencies_ms"]) == 3 and t["latency_ms"] > 0
        assert t["vs_fp32"] == pytest.approx(base["latency_ms"] / t["latency_ms"])
        assert t["vs_bf16"] == pytest.approx(bf16["latency_ms"] / t["latency_ms"])
        assert t["gmacs_per_s"] == pytest.approx(t["macs"] / (t["latency_ms"] * 1e6))
    md = (out / "benchmark.md").read_text()
    assert all(label in md for label in labels) and (out / "benchmark.png").stat().st_size > 1000
    assert "avx512_vnni=" in md and "avx2=" in md  # the ISA flags are recorded


def test_benchmark_refuses_folder_without_report(tmp_path, capsys) -> None:
    assert benchmark.main([str(tmp_path), "--out", str(tmp_path / "b")]) == 2
    assert "no report.json" in capsys.readouterr().err
