"""tools.benchmark: benchmark_app output parsing (recorded runs) and an end-to-end smoke run."""

from __future__ import annotations

import json

import pytest

from compress.runtime import default_precision
from tests.helpers import TESTS
from tools import benchmark, benchmark_app, speed_check

DATA = TESTS / "data"


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("benchmark_app_*.txt")))
def test_parse_recorded_benchmark_app_output(name: str) -> None:
    text = (DATA / name).read_text()
    stats = benchmark_app.parse_benchmark_app(text)
    expect = json.loads((DATA / "benchmark_app_expected.json").read_text())[name]
    assert stats == pytest.approx(expect)


def test_every_recorded_output_has_its_expected_figures() -> None:
    """The parametrized parse test runs one case per recorded file: a file without expected figures (or figures
    without their file) would silently test nothing."""
    recorded = {p.name for p in DATA.glob("benchmark_app_*.txt")}
    assert recorded == set(json.loads((DATA / "benchmark_app_expected.json").read_text())) and len(recorded) >= 5


def test_parse_normalises_every_latency_unit_to_ms() -> None:
    """benchmark_app prints "us" when the average latency is under 1 ms (a fast CPU at a small input), "ms"
    otherwise; "s" is accepted too. The recorded us run came from an AVX-512 VNNI/BF16 CPU at 32 px; the
    seconds file is the recorded INT8 ms run with every latency rewritten in s (so it must parse the same)."""
    us = benchmark_app.parse_benchmark_app((DATA / "benchmark_app_fp32_32px_us_latency.txt").read_text())
    assert us["median_ms"] == pytest.approx(0.83074) and us["max_ms"] == pytest.approx(2.49112)
    ms = benchmark_app.parse_benchmark_app((DATA / "benchmark_app_int8_latency.txt").read_text())
    s = benchmark_app.parse_benchmark_app((DATA / "benchmark_app_synthetic_seconds.txt").read_text())
    assert s == pytest.approx(ms)
    line = ("[ INFO ] Count: 5 iterations\n[ INFO ] Latency:\n[ INFO ]    Median:        {}\n"
            "[ INFO ] Throughput: 1.00 FPS")
    for text, want in (("904.83 us", 0.90483), ("12.50 ms", 12.5), ("1.25 s", 1250.0)):
        assert benchmark_app.parse_benchmark_app(line.format(text))["median_ms"] == pytest.approx(want)


def test_parse_takes_the_overall_statistics_not_shape_groups() -> None:
    """With -pcseq benchmark_app prints per-shape-group latencies after the overall ones."""
    text = ("[ INFO ] Count: 10 iterations\n[ INFO ] Latency:\n[ INFO ]    Median:        2.00 ms\n"
            "[ INFO ] Latency for each data shape group:\n[ INFO ] 1.input: [1,3,32,32]\n"
            "[ INFO ]    Median:     9.00 ms\n[ INFO ] Throughput: 500.00 FPS")
    assert benchmark_app.parse_benchmark_app(text)["median_ms"] == pytest.approx(2.0)


def test_parse_quotes_output_with_an_unknown_unit() -> None:
    with pytest.raises(ValueError, match=r"(?s)no Median latency.*Median:        3\.00 fortnights"):
        benchmark_app.parse_benchmark_app("[ INFO ] Count: 1 iterations\n[ INFO ]    Median:        3.00 fortnights\n"
                                      "[ INFO ] Throughput: 1.00 FPS")


def test_parse_rejects_output_without_statistics() -> None:
    with pytest.raises(ValueError, match="no Median latency"):
        benchmark_app.parse_benchmark_app("[ ERROR ] Input x is dynamic")


def test_parse_recorded_perf_counters() -> None:
    """A recorded `-report_type average_counters` CSV of the INT8 XXS IR at 64 px: the executed rows sum to
    the file's own Total line, and the aggregation keeps every millisecond and node."""
    text = (DATA / "benchmark_app_int8_average_counters.csv").read_text()
    rows = benchmark_app.parse_perf_counters(text)
    total = float(next(line for line in text.splitlines() if line.startswith("Total;")).split(";")[4])
    assert sum(r["real_ms"] for r in rows) == pytest.approx(total, abs=1e-3 * len(rows))
    agg = benchmark_app.aggregate_perf(rows)
    assert sum(v["ms"] for v in agg.values()) == pytest.approx(sum(r["real_ms"] for r in rows))
    assert sum(v["nodes"] for v in agg.values()) == len(rows)
    assert list(agg.values()) == sorted(agg.values(), key=lambda v: -v["ms"])
    assert "Convolution [i8]" in agg and "Convolution [f32]" in agg  # the float stem stays f32
    assert benchmark_app.exec_precision("brgconv_avx2_1x1_I8") == "i8"
    assert benchmark_app.exec_precision("undef") == "other"


def test_run_length_is_whole_seconds_or_iterations() -> None:
    assert benchmark_app.run_length(0.3) == ["-t", "1"] and benchmark_app.run_length(10.4) == ["-t", "10"]
    assert benchmark_app.run_length(10, niter=20) == ["-niter", "20"]
    with pytest.raises(SystemExit):
        benchmark.main(["x", "-t", "1", "-niter", "20"])  # one or the other


def test_parse_perf_counters_rejects_empty_report() -> None:
    with pytest.raises(ValueError, match="no executed layers"):
        benchmark_app.parse_perf_counters("layerName;execStatus;layerType;execType;realTime (ms);cpuTime (ms)\n")


@pytest.mark.slow
def test_benchmark_smoke_tiny_input(tmp_path, quick_run) -> None:
    """The session's quick 32 px INT8 run (tests/shared_runs.py) timed with every target and option."""
    run = quick_run
    out = tmp_path / "bench"
    assert benchmark.main([str(run), "-niter", "20", "--rounds", "2", "--python-seconds", "0.3", "--pc", "--hint",
                           "both", "--batch", "4", "--out", str(out)]) == 0
    data = json.loads((out / "benchmark.json").read_text())
    labels = [t["label"] for t in data["targets"]]
    prec = default_precision()
    assert labels == [f"plain FP32 default({prec})", "plain FP32 f32", f"q32/fp32 default({prec})", "q32/fp32 f32",
                      "q32/int8", "q32/onnxruntime fp32", "q32/torch eager fp32", "q32/numpy reference fp32"]
    base = data["targets"][0]
    assert data["baseline"] == "plain FP32" and base["role"] == "plain"
    for t in data["targets"]:
        assert len(t["latencies_ms"]) == 2 and t["latency_ms"] > 0
        assert t["vs_plain_latency"] == pytest.approx(base["latency_ms"] / t["latency_ms"])
        assert t["gmacs_per_s"] == pytest.approx(t["macs"] / (t["latency_ms"] * 1e6))
        if t["backend"] == "openvino":  # --hint both: FPS from the throughput-hint runs
            assert len(t["throughputs_fps"]) == 2
            assert t["vs_plain_throughput"] == pytest.approx(t["throughput_fps"] / base["throughput_fps"])
            assert len(t["throughputs_bn_fps"]) == 2  # --batch 4: every IR reshaped to [4,3,32,32]
            assert t["vs_plain_throughput_bn"] == pytest.approx(t["throughput_bn_fps"] / base["throughput_bn_fps"])
            assert t["throughput_bn_best_fps"] == max(t["throughputs_bn_fps"])
            assert t["runtime"]["executed"] > 100 and t["runtime"]["isa"]  # node accounting, with the ISA
        else:
            assert not t["throughputs_bn_fps"]
    md = (out / "benchmark.md").read_text()
    assert all(label in md for label in labels) and (out / "benchmark.png").stat().st_size > 1000
    assert "FPS b4 vs plain" in md and data["batch"] == 4
    assert "-hint both -niter 20," in md and data["niter"] == 20 and data["seconds"] is None
    assert "avx512_vnni=" in md and "avx2=" in md  # the ISA flags are recorded
    assert "## Executed nodes" in md and "**executed nodes**" in md
    ov_targets = [t for t in data["targets"] if t["backend"] == "openvino"]
    assert all(t["perf_by_type"] for t in ov_targets)  # --pc: per-op-type counters for every IR
    assert not any(t["perf_by_type"] for t in data["targets"] if t["backend"] != "openvino")
    assert "## Time per op type" in md and "Convolution [" in md


@pytest.mark.slow
def test_speed_check_puts_the_section_beside_benchmark_app(quick_run, capsys) -> None:
    """--check-speed times a report's IRs with the report's own speed section and with benchmark_app in
    one run, and prints each ratio against plain FP32 from both and their ratio (the figures here are too short to
    mean anything; the note quotes real runs)."""
    capsys.readouterr()
    assert benchmark.main([str(quick_run), "--check-speed", "-niter", "20", "--rounds", "1", "--budget", "1"]) == 0
    out = capsys.readouterr().out
    res = json.loads(out.strip().splitlines()[-1])
    assert [r["model"] for r in res["rows"]] == ["deploy FP32", "INT8"] and res["rounds"] == 1 and res["batch"] == 8
    for r in res["rows"]:
        assert r["latency_ratio_of_ratios"] == pytest.approx(r["section_latency_x"] / r["app_latency_x"])
        assert r["fps_bn_ratio_of_ratios"] == pytest.approx(r["section_fps_bn_x"] / r["app_fps_bn_x"])
        assert all(v >= 0 for v in r["section_spread"].values())
    assert res["within"] == all(abs(r[k] - 1) <= speed_check.SPEED_CHECK_TOLERANCE for r in res["rows"]
                                for k in ("latency_ratio_of_ratios", "fps_bn_ratio_of_ratios"))
    assert "ratio of ratios" in out and "benchmark_app" in out


def test_runtime_graph_counts_what_the_plugin_executes(tmp_path) -> None:
    """compress.runtime counts the runtime model's executed nodes; the plugin's own per-node profiling
    (EXECUTED status, what benchmark_app's counters list) must count the same, per layer type."""
    from compress import export, loading
    from compress.runtime import compile_counted, count_executed, cpu_isa, runtime_graph
    from reference_np.macs import count_layers

    loaded = loading.load("cloformer_xxs", "proxy", 64)
    for model in (export.convert_deploy(loaded), export.convert_plain(loaded)):
        for precision in ("f32", None):
            compiled, req = compile_counted(model, "CPU", precision)
            types, precs, both = count_executed(compiled)  # the same compilation: counts must match exactly
            executed = [p for p in req.get_profiling_info() if str(p.status) == "Status.EXECUTED"]
            assert sum(types.values()) == len(executed) == sum(precs.values()) == sum(both.values())
            assert types["Reorder"] == sum(p.node_type == "Reorder" for p in executed)
            assert types["Convolution"] == sum(p.node_type in ("Convolution", "GroupConvolution")
                                               for p in executed) == count_layers(loaded.weights)["convolutions"]
            g = runtime_graph(model, "x", "CPU", precision, compiles=2)
            assert g.executed == sum(g.by_type.values()) and g.reorders == g.by_type.get("Reorder", 0)
            assert 0 <= g.spread <= 0.05 * g.executed and g.isa == cpu_isa() and g.precision == (precision or
                                                                                                "default")
    # the deploy form folds AvgPool into global_kv: 10 fewer nodes, more than the compile-to-compile spread
    assert runtime_graph(export.convert_deploy(loaded), precision="f32", compiles=3).executed <= runtime_graph(
        export.convert_plain(loaded), precision="f32", compiles=3).executed - 8


def test_benchmark_refuses_folder_without_report(tmp_path, capsys) -> None:
    (tmp_path / "f").mkdir()
    assert benchmark.main([str(tmp_path / "f"), "--out", str(tmp_path / "b")]) == 2
    assert "no report.json" in capsys.readouterr().err


def test_sweep_rows_state_every_setting_they_depend_on() -> None:
    """Rows are built from one explicit base, not from the library's defaults (which moved after
    the sweep): a row named 'global min/max' runs min/max with fast bias correction, and the row named default is
    exactly QuantSettings()."""
    from compress.settings import QuantSettings
    from tools.sweep_quant import BASE, SETTINGS

    assert BASE.activation_range == "minmax" and BASE.fast_bias_correction is True and BASE.ignored_scope == ()
    row = SETTINGS["global min/max, everything int8"]
    assert row.activation_range == "minmax" and row.fast_bias_correction is True and row.ignored_scope == ()
    assert SETTINGS["float stem + SDPA, histogram ranges"].fast_bias_correction is True
    assert SETTINGS["float stem + SDPA, full bias correction"].activation_range == "minmax"
    (default_name,) = [k for k in SETTINGS if k.endswith("(default)")]
    assert SETTINGS[default_name] == QuantSettings()


def test_imposed_isa_rows_run_under_their_isa_against_their_own_baseline(tmp_path, capsys) -> None:
    """Tools.benchmark --isa: each imposed row runs benchmark_app under ONEDNN_MAX_CPU_ISA, at f32
    where that ISA has no BF16 (as such a CPU defaults to), and is compared with the baseline run under the same ISA."""
    from dataclasses import replace

    from tools.bench_targets import Target
    from tools.benchmark import ratios

    base = Target("plain FP32 default", "openvino", "default", "p.xml", "g", 64, 1, role="plain",
                  latencies_ms=[10.0], throughputs_fps=[100.0])
    int8 = Target("g/int8", "openvino", "int8", "q.xml", "g", 64, 1, role="int8", latencies_ms=[5.0],
                  throughputs_fps=[200.0])
    base2 = replace(base, label="plain @AVX2", isa="AVX2", latencies_ms=[20.0], throughputs_fps=[50.0])
    int82 = replace(int8, label="int8 @AVX2", isa="AVX2", latencies_ms=[16.0], throughputs_fps=[60.0])
    r = ratios([base, int8, base2, int82])
    assert r["g/int8"]["vs_plain_latency"] == 2.0 and r["int8 @AVX2"]["vs_plain_latency"] == 1.25
    assert r["int8 @AVX2"]["vs_plain_throughput"] == pytest.approx(1.2)
    assert int82.app_env()["ONEDNN_MAX_CPU_ISA"] == "AVX2" and int82.app_precision() == "f32"
    assert int8.app_env() is None and int8.app_precision() is None
    assert replace(int8, isa="AVX512_CORE_BF16").app_precision() is None
    f32 = replace(base, label="plain FP32 f32", precision="f32")
    labels = [t.label for t in benchmark.imposed([base, f32, int8], ["AVX2", "AVX512_CORE_BF16"])]
    assert labels == ["plain FP32 default @AVX2", "g/int8 @AVX2", "plain FP32 default @AVX512_CORE_BF16",
                      "plain FP32 f32 @AVX512_CORE_BF16", "g/int8 @AVX512_CORE_BF16"]  # (no f32 twin without BF16)
    with pytest.raises(SystemExit) as e:
        benchmark.main([str(tmp_path), "--isa", "AVX9"])
    assert e.value.code == 2 and "--isa 'AVX9'" in capsys.readouterr().err
