"""tools.frontier without building or timing anything: its plan, the accuracy bound of each artifact, the Pareto
points and the choice (compress.choice's rule, over benchmark_app's per-round figures)."""

from __future__ import annotations

import pytest

from compress.targets import FAST_DROP, INT8_AGREEMENT
from tools.bench_targets import Target
from tools.frontier import Point, choose_point, mark_front, miss, per_round, plan


def test_the_plan_is_one_job_a_configuration_each_without_its_own_timing() -> None:
    configs = plan([0.6, 0.3], qat=True, common=["--checkpoint", "x.pth"], depths=[2])
    assert [c.name for c in configs] == ["quantize", "qat", "prune-0.3", "prune-0.6", "depth-2", "prune-0.3-depth-2",
                                         "prune-0.6-depth-2"]
    assert configs[4].argv[:5] == ["compress.prune", "--method", "depth", "--depth", "2"]
    assert configs[6].argv[1:8] == ["--method", "structured", "--ratio", "0.6", "--depth", "2", "--quantize"]
    assert configs[2].argv[:6] == ["compress.prune", "--method", "structured", "--ratio", "0.3", "--quantize"]
    assert [c.name for c in configs if "--qat" in c.argv] == ["qat"]
    for c in configs:
        assert {"--checkpoint", "x.pth"} <= set(c.argv)
        assert c.argv[c.argv.index("--benchmark-seconds") + 1] == "0" and "--isa-matrix" in c.argv


def test_the_accuracy_bound_is_the_drop_then_the_int8_agreement() -> None:
    assert miss(90.0, None, 90.0 + FAST_DROP.bound) is None
    assert "top-1 drop" in miss(90.0, None, 90.0 + FAST_DROP.bound + 0.1)
    assert "agreement" in miss(90.0, INT8_AGREEMENT.bound - 0.5, 90.0)
    assert "not measured" in miss(None, None, 90.0)


def test_ratios_are_medians_of_per_round_ratios() -> None:
    assert per_round([2.0, 4.0, 3.0], [4.0, 4.0, 9.0], invert=True) == 2.0  # latency: base / own
    assert per_round([200.0, 100.0, 300.0], [100.0, 100.0, 100.0], invert=False) == 2.0


def point(label: str, top1: float, lat_x: float, fps_x: float, m: str | None = None) -> Point:
    return Point(label, f"{label}.xml" if label != "plain FP32" else "", "", top1, None, m, 6.0 / lat_x,
                 500 * fps_x, lat_x, fps_x)


def target(label: str, lat_ms: float, fps: float) -> Target:
    return Target(label, "openvino", "default", "", "", 224, 0, latencies_ms=[lat_ms] * 3,
                  throughputs_bn_fps=[fps] * 3)


def test_pareto_points_are_those_nothing_beats_in_both() -> None:
    pts = [point("plain FP32", 90.5, 1.0, 1.0), point("quantize/fp32", 90.5, 1.02, 1.01),
           point("quantize/int8", 90.4, 1.0, 1.0), point("prune-0.45/int8", 90.0, 1.4, 1.5)]
    mark_front(pts)
    assert [p.front_latency for p in pts] == [False, True, False, True]
    assert [p.front_fps for p in pts] == [False, True, False, True]


@pytest.mark.parametrize(("pruned_top1", "chosen"), [(90.4, "prune-0.45/int8"), (89.0, "quantize/fp32")])
def test_the_choice_is_the_simplest_unless_a_compressed_one_is_faster_and_accurate(pruned_top1, chosen) -> None:
    ref = 90.5
    pts = [point("plain FP32", ref, 1.0, 1.0), point("quantize/fp32", ref, 1.0, 1.0),
           point("quantize/int8", 90.4, 1.0, 1.0),
           point("prune-0.45/int8", pruned_top1, 1.4, 1.5, miss(pruned_top1, 99.5, ref))]
    targets = [target(p.label, p.latency_ms, p.fps_bn) for p in pts]
    best, why = choose_point(pts, targets, 8)
    assert best is not None and best.label == chosen
    assert any("quantize/int8 (quantize/int8.xml) is not faster here" in w for w in why)


def test_an_ir_with_the_same_bytes_as_an_earlier_one_is_timed_once(tmp_path) -> None:
    from tools.frontier import distinct

    for name, payload in (("a", b"1"), ("b", b"1"), ("c", b"2")):
        (tmp_path / f"{name}.xml").write_bytes(b"<net/>")
        (tmp_path / f"{name}.bin").write_bytes(payload)
    targets = [Target(n, "openvino", "int8", str(tmp_path / f"{n}.xml"), "", 224, 0) for n in "abc"]
    assert [t.label for t in distinct(targets)] == ["a", "c"]
