"""Where an IR's time goes on this CPU, and what arithmetic alone would cost.

    p = profile_ir("outputs/int8/model_int8.xml")          # batch 1, LATENCY hint, the device's defaults
    p.verdict                                               # bound by arithmetic, or by nodes and memory passes

The plugin's performance counters (PERF_COUNT) give each executed node's time, summed over `runs` inferences
after a warm-up: by node type (nodes, ms, µs a node), the share of layout nodes (Transpose, Reorder, splits and
concatenations: moving data, no arithmetic), and per stage of the network the time of int8 kernels against
float ones. The arithmetic bound is the IR's multiply-accumulates (read from its convolutions, MatMuls and
attention) at the peak this process measures on the same device and precision with a large 1x1 convolution
(`measure_peak`): a model whose time is many times its bound is bound by nodes and memory passes, not
arithmetic, and fewer MACs (or int8 ones) buy little there.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .runtime import compile_ov, default_precision, imposed_isa, own_isa

LAYOUT_TYPES = frozenset({"Transpose", "Reorder", "VariadicSplit", "Split", "Concat", "Reshape", "Gather",
                          "StridedSlice", "Broadcast", "Tile"})
NODE_BOUND_RATIO = 3.0  # measured time over the arithmetic bound beyond which a model is called node-bound
PEAK_SHAPES = ((1024, 14), (512, 28), (256, 56))  # (channels, side) of the 1x1 convolutions timed for the peak


@dataclass
class TypeTime:
    type: str  # layer type, e.g. Convolution, Subgraph (fused element-wise), Transpose
    nodes: int
    ms: float  # per inference

    @property
    def us_per_node(self) -> float:
        return 1e3 * self.ms / self.nodes if self.nodes else 0.0


@dataclass
class StageTime:
    stage: str  # stem, layers.0 ... layers.3, head
    int8_ms: float
    float_ms: float
    int8_nodes: int
    float_nodes: int


@dataclass
class Profile:
    """One IR at batch 1 (LATENCY hint) on one device and precision."""

    ir: str
    device: str
    precision: str  # what the plugin ran the float ops in ('bf16' on AMX by default)
    isa: str  # oneDNN's name of the ISA the kernels used, e.g. AVX512_CORE_AMX, 'AVX2 (imposed)'
    runs: int
    wall_ms: float  # median latency of the profiled inferences
    nodes: int  # executed
    node_ms: float  # the counters' sum
    by_type: list[TypeTime] = field(default_factory=list)  # slowest first
    by_stage: list[StageTime] = field(default_factory=list)
    layout_nodes: int = 0
    layout_ms: float = 0.0
    macs: int = 0  # of the IR's convolutions, MatMuls and attention, at batch 1
    peak_gmacs: dict[str, float] = field(default_factory=dict)  # measured: 'float' (this precision), 'int8'
    bound_ms: float = 0.0  # the MACs at the measured peaks

    @property
    def bound_ratio(self) -> float:
        return self.wall_ms / self.bound_ms if self.bound_ms else float("inf")

    @property
    def verdict(self) -> str:
        if self.bound_ratio >= NODE_BOUND_RATIO:
            return (f"bound by nodes and memory passes, not arithmetic: {self.wall_ms:.2f} ms against an arithmetic "
                    f"bound of {self.bound_ms:.2f} ms ({self.bound_ratio:.0f}x); {self.nodes} executed nodes at "
                    f"{1e3 * self.node_ms / max(self.nodes, 1):.0f} µs each, {self.layout_nodes} of them layout")
        return (f"near its arithmetic bound: {self.wall_ms:.2f} ms against {self.bound_ms:.2f} ms "
                f"({self.bound_ratio:.1f}x); fewer or int8 MACs pay here")


def stage_of(name: str) -> str:
    m = re.search(r"layers\.(\d+)", name)
    if m:
        return f"layers.{m.group(1)}"
    return "stem" if "stem" in name else "head"


def is_int8(exec_type: str) -> bool:
    """A kernel that computes in int8 (its exec type ends in the precision: ..._I8, ..._U8)."""
    return exec_type.lower().rsplit("_", 1)[-1] in ("i8", "u8")


# ------------------------------------------------------------------ MACs
def _dims(port: Any) -> list[int]:
    return [int(d) for d in port.get_partial_shape().to_shape()]


def ir_macs(model: Any) -> int:
    """Multiply-accumulates of one inference of `model` (an ov.Model with static shapes): convolutions (grouped
    too), MatMuls and ScaledDotProductAttention; element-wise ops and norms are not counted."""
    total = 0
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind == "Convolution":
            out, w = _dims(op.output(0)), _dims(op.input(1).get_source_output())
            total += int(np.prod(out)) * int(np.prod(w[1:]))
        elif kind == "GroupConvolution":
            out, w = _dims(op.output(0)), _dims(op.input(1).get_source_output())
            total += int(np.prod(out)) * int(np.prod(w[2:]))
        elif kind == "MatMul":
            a = _dims(op.input(0).get_source_output())
            k = a[-2] if op.get_attributes().get("transpose_a") else a[-1]
            total += int(np.prod(_dims(op.output(0)))) * k
        elif kind == "ScaledDotProductAttention":
            q, kk = _dims(op.input(0).get_source_output()), _dims(op.input(1).get_source_output())
            total += 2 * int(np.prod(q)) * kk[-2]  # Q K^T and (softmax) V: L x S x D each, per batch and head
    return total


# ------------------------------------------------------------------ the peak
def _pointwise_model(channels: int, side: int, int8: bool) -> Any:
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, channels, side, side], np.float32, name="x")
    w = ops.constant(np.random.default_rng(0).standard_normal((channels, channels, 1, 1)).astype(np.float32) * 0.05)
    src = x
    if int8:  # FakeQuantize on the input and the weights: the plugin runs the convolution on int8 kernels
        lo, hi = ops.constant(np.float32(-4.0)), ops.constant(np.float32(4.0))
        src = ops.fake_quantize(x, lo, hi, lo, hi, 256)
        wl, wh = ops.constant(np.float32(-0.5)), ops.constant(np.float32(0.5))
        w = ops.fake_quantize(w, wl, wh, wl, wh, 255)
    y = ops.convolution(src, w, [1, 1], [0, 0], [0, 0], [1, 1])
    return ov.Model([y], [x], "peak")


@lru_cache(maxsize=8)
def measure_peak(device: str = "CPU", precision: str | None = None, int8: bool = False, seconds: float = 0.5) -> float:
    """GMAC/s of a large 1x1 convolution at batch 1 (LATENCY hint) on `device`, in this process: the best of
    PEAK_SHAPES, each timed for `seconds` after a warm-up. Float at `precision` (None: the device's default), or
    int8 kernels."""
    best = 0.0
    for channels, side in PEAK_SHAPES:
        compiled = compile_ov(_pointwise_model(channels, side, int8), device, precision, PERFORMANCE_HINT="LATENCY")
        request = compiled.create_infer_request()
        x = np.random.default_rng(1).standard_normal((1, channels, side, side)).astype(np.float32)
        for _ in range(5):
            request.infer({0: x})
        times = []
        t_end = time.perf_counter() + seconds
        while time.perf_counter() < t_end or len(times) < 5:
            t0 = time.perf_counter()
            request.infer({0: x})
            times.append(time.perf_counter() - t0)
        best = max(best, channels * channels * side * side / min(times) / 1e9)
    return best


# ------------------------------------------------------------------ the profile
def profile_ir(ir: str | Path | Any, device: str = "CPU", precision: str | None = None, runs: int = 200,
               warmup: int = 20, label: str | None = None) -> Profile:
    """The profile of an IR (a path, or an ov.Model) at batch 1: `runs` inferences after `warmup`, on random input
    (the IR's static shape, or batch 1 at its input's side)."""
    import openvino as ov

    model = ov.Core().read_model(str(ir)) if isinstance(ir, (str, Path)) else ir
    shape = [1, *[int(d) for d in model.inputs[0].get_partial_shape().get_min_shape()[1:]]]
    compiled = compile_ov(model, device, precision, shape=shape, PERF_COUNT=True, PERFORMANCE_HINT="LATENCY")
    name = label or (Path(ir).name if isinstance(ir, (str, Path)) else model.get_friendly_name())
    return profile_compiled(compiled, model, name, device, precision, runs, warmup)


def profile_compiled(compiled: Any, model: Any, label: str, device: str = "CPU", precision: str | None = None,
                     runs: int = 200, warmup: int = 20) -> Profile:
    """The profile of `compiled` (batch 1, compiled with PERF_COUNT on) of `model` (the ov.Model its MACs are read
    from): `runs` inferences after `warmup`, on random input."""
    request = compiled.create_infer_request()
    shape = [int(d) for d in compiled.input(0).get_shape()]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for _ in range(warmup):
        request.infer({0: x})
    node_us: dict[tuple[str, str, str], float] = defaultdict(float)
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        request.infer({0: x})
        walls.append(time.perf_counter() - t0)
        for info in request.profiling_info:
            if info.status.name == "EXECUTED":
                node_us[(info.node_name, info.node_type, info.exec_type)] += info.real_time.total_seconds() * 1e6
    per_type: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    per_stage: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0, 0])
    layout_nodes, layout_ms = 0, 0.0
    for (name, kind, exec_type), us in node_us.items():
        ms = us / runs / 1e3
        per_type[kind][0] += 1
        per_type[kind][1] += ms
        if kind in LAYOUT_TYPES:
            layout_nodes, layout_ms = layout_nodes + 1, layout_ms + ms
        s = per_stage[stage_of(name)]
        if is_int8(exec_type):
            s[0] += ms
            s[2] += 1
        else:
            s[1] += ms
            s[3] += 1
    static = model
    if model.inputs[0].get_partial_shape().is_dynamic or [int(d) for d in model.inputs[0].get_shape()] != shape:
        static = model.clone()  # MACs at the compiled shape
        static.reshape({static.inputs[0]: shape})
    macs = ir_macs(static)
    peak = {"float": measure_peak(device, precision)}
    if any(is_int8(e) for _, _, e in node_us):
        peak["int8"] = measure_peak(device, precision, int8=True)
    by_type = sorted((TypeTime(k, int(n), round(ms, 4)) for k, (n, ms) in per_type.items()), key=lambda t: -t.ms)
    order = ["stem", "layers.0", "layers.1", "layers.2", "layers.3", "head"]
    by_stage = [StageTime(s, round(v[0], 4), round(v[1], 4), int(v[2]), int(v[3]))
                for s, v in sorted(per_stage.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)]
    isa = (own_isa() + (" (imposed)" if imposed_isa() else "")) if device.upper().startswith("CPU") else device
    return Profile(label, device, precision or default_precision(device), isa, runs,
                   round(1e3 * float(np.median(walls)), 4), len(node_us), round(sum(node_us.values()) / runs / 1e3, 4),
                   by_type, by_stage, layout_nodes, round(layout_ms, 4), macs,
                   {k: round(v, 1) for k, v in peak.items()}, round(macs / (max(peak.values()) * 1e9) * 1e3, 4))
