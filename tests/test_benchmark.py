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


def test_parse_recorded_perf_counters() -> None:
    """A recorded `-report_type average_counters` CSV of the INT8 XXS IR at 64 px: the executed rows sum to
    the file's own Total line, and the aggregation keeps every millisecond and node."""
    text = (DATA / "benchmark_app_int8_average_counters.csv").read_text()
    rows = benchmark.parse_perf_counters(text)
    total = float(next(line for line in text.splitlines() if line.startswith("Total;")).split(";")[4])
    assert sum(r["real_ms"] for r in rows) == pytest.approx(total, abs=1e-3 * len(rows))
    agg = benchmark.aggregate_perf(rows)
    assert sum(v["ms"] for v in agg.values()) == pytest.approx(sum(r["real_ms"] for r in rows))
    assert sum(v["nodes"] for v in agg.values()) == len(rows)
    assert list(agg.values()) == sorted(agg.values(), key=lambda v: -v["ms"])
    assert "Convolution [i8]" in agg and "Convolution [f32]" in agg  # the float stem stays f32
    assert benchmark.exec_precision("brgconv_avx2_1x1_I8") == "i8"
    assert benchmark.exec_precision("undef") == "other"


def test_parse_perf_counters_rejects_empty_report() -> None:
    with pytest.raises(ValueError, match="no executed layers"):
        benchmark.parse_perf_counters("layerName;execStatus;layerType;execType;realTime (ms);cpuTime (ms)\n")


def test_benchmark_smoke_tiny_input(tmp_path) -> None:
    run = tmp_path / "q32"
    assert quantize.main(["--input-size", "32", "--subset-size", "8", "--val-limit", "16", "--out", str(run)]) == 0
    out = tmp_path / "bench"
    assert benchmark.main([str(run), "-t", "1", "--rounds", "3", "--python-seconds", "0.3", "--pc",
                           "--out", str(out)]) == 0
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
    ov_targets = [t for t in data["targets"] if t["backend"] == "openvino"]
    assert all(t["perf_by_type"] for t in ov_targets)  # --pc: per-op-type counters for every IR
    assert not any(t["perf_by_type"] for t in data["targets"] if t["backend"] != "openvino")
    assert "## Time per op type" in md and "Convolution [" in md


def test_benchmark_refuses_folder_without_report(tmp_path, capsys) -> None:
    assert benchmark.main([str(tmp_path), "--out", str(tmp_path / "b")]) == 2
    assert "no report.json" in capsys.readouterr().err
