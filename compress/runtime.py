"""What OpenVINO's CPU plugin really executes: counts of the runtime graph's executed nodes by layer type
and by execution precision, Reorders included (compiled_model.get_runtime_model()).

At batch 1 CloFormer is bound by executed nodes, not by arithmetic, so these counts are the bar a deploy
graph is held to. They depend on the OpenVINO version and the CPU ISA (recorded beside them), not on
timing noise; measured here, two compilations of the same model can still differ by one or two Reorders
or fused Subgraphs (the plugin's layout choice), so `runtime_graph(..., compiles=n)` keeps the smallest
of n compilations and reports the spread.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_isa() -> str:
    """The CPU's relevant ISA flags, e.g. 'avx2 avx512f avx512_vnni avx512_bf16' (from /proc/cpuinfo)."""
    m = re.search(r"flags\s*:\s*(.*)", _cpuinfo())
    if m is None:
        return "unknown"
    flags = set(m.group(1).split())
    return " ".join(f for f in ISA_FLAGS if f in flags) or "none of " + "/".join(ISA_FLAGS)


def cpu_model() -> dict[str, Any]:
    """{'cpu': model name, 'mhz': the highest current clock of any core (None when not reported)}."""
    text = _cpuinfo()
    m = re.search(r"model name\s*:\s*(.*)", text)
    mhz = [float(v) for v in re.findall(r"cpu MHz\s*:\s*([0-9.]+)", text)]
    return {"cpu": m.group(1).strip() if m else "unknown", "mhz": max(mhz) if mhz else None}


@dataclass
class RuntimeGraph:
    """Executed nodes of one compiled model (one inference with PERF_COUNT on zeros)."""

    label: str
    precision: str  # the INFERENCE_PRECISION_HINT it was compiled with ('default' = none)
    isa: str
    openvino: str
    executed: int
    reorders: int
    by_type: dict[str, int] = field(default_factory=dict)  # layer type -> count
    by_precision: dict[str, int] = field(default_factory=dict)  # runtime precision -> count
    by_type_precision: dict[str, int] = field(default_factory=dict)  # "Convolution [i8]" -> count
    spread: int = 0  # max - min executed nodes over the compilations counted


def _info(op: Any, key: str) -> str:
    return op.get_rt_info()[key].astype(str)


def count_executed(compiled: Any) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """(by type, by precision, by "type [precision]") of a compiled model's runtime graph, after one inference
    with PERF_COUNT on (needed for execTimeMcs). A node counts when it ran: not a constant (nor computed from
    constants only, which the plugin folds at compile time), not Input/Output, and its execTimeMcs is not
    'not_executed' (in-place Reshape/Split/Concat)."""
    const: set[str] = set()
    types: Counter[str] = Counter()
    precs: Counter[str] = Counter()
    both: Counter[str] = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        layer = _info(op, "layerType")
        inputs = [i.get_source_output().get_node().get_name() for i in op.inputs()]
        if layer == "Const" or (inputs and all(n in const for n in inputs)):
            const.add(op.get_name())
            continue
        if layer in ("Input", "Output") or _info(op, "execTimeMcs") == "not_executed":
            continue
        prec = _info(op, "runtimePrecision")
        types[layer] += 1
        precs[prec] += 1
        both[f"{layer} [{prec}]"] += 1
    return types, precs, both


def compile_counted(model: Any, device: str = "CPU", precision: str | None = None) -> tuple[Any, Any]:
    """(compiled model, infer request) after one inference on zeros with PERF_COUNT on."""
    import openvino as ov

    cfg: dict[str, Any] = {"PERF_COUNT": True}
    if precision and device.upper().startswith("CPU"):
        cfg["INFERENCE_PRECISION_HINT"] = precision
    compiled = ov.Core().compile_model(str(model) if isinstance(model, (str, os.PathLike)) else model, device, cfg)
    req = compiled.create_infer_request()
    req.infer({i: np.zeros(tuple(inp.get_shape()), np.float32) for i, inp in enumerate(compiled.inputs)})
    return compiled, req


def runtime_graph(model: Any, label: str = "", device: str = "CPU", precision: str | None = None,
                  compiles: int = 1) -> RuntimeGraph:
    """Executed nodes of `model` (an ov.Model or an IR path) compiled for `device`; with compiles > 1, the
    compilation with the fewest executed nodes, and `spread` the range seen."""
    import openvino as ov

    seen = []
    for _ in range(max(1, compiles)):
        types, precs, both = count_executed(compile_counted(model, device, precision)[0])
        seen.append((sum(types.values()), types, precs, both))
    total, types, precs, both = min(seen, key=lambda t: t[0])
    return RuntimeGraph(label, precision or "default", cpu_isa(), ov.__version__.split("-")[0], total,
                        types["Reorder"], dict(types.most_common()), dict(precs.most_common()),
                        dict(both.most_common()), max(s[0] for s in seen) - total)


def default_precision(device: str = "CPU") -> str:
    """The precision the plugin runs FP32 IRs in by default, as the plugin itself reports it
    (INFERENCE_PRECISION_HINT): bf16 on AVX-512-BF16/AMX CPUs, f32 on AVX2-only ones, possibly f16 elsewhere."""
    import openvino as ov

    core = ov.Core()
    try:
        hint = str(core.get_property(device, "INFERENCE_PRECISION_HINT"))
    except RuntimeError:  # a device without the property (e.g. AUTO): fall back to its capabilities
        caps = core.get_property(device, "OPTIMIZATION_CAPABILITIES")
        return "bf16" if "BF16" in caps else ("f16" if "FP16" in caps else "f32")
    for key, name in (("bfloat16", "bf16"), ("bf16", "bf16"), ("f16", "f16"), ("float16", "f16"), ("f32", "f32"),
                      ("float32", "f32")):
        if key in hint.lower():
            return name
    return hint


def compile_ov(model: Any, device: str = "CPU", precision: str | None = "f32", **config: Any) -> Any:
    """Compile an IR path or ov.Model; on CPU, precision 'f32' forces true FP32 (a BF16-capable CPU would
    otherwise run FP32 IRs in BF16 silently)."""
    import openvino as ov

    cfg = {"INFERENCE_PRECISION_HINT": precision} if precision and device.upper().startswith("CPU") else {}
    cfg.update(config)
    return ov.Core().compile_model(str(model) if isinstance(model, (str, os.PathLike)) else model, device, cfg)


def run_ov(compiled: Any, batch: np.ndarray) -> list[np.ndarray]:
    """All outputs for a batch, run image by image (a batch-1 IR)."""
    per_image = [compiled(batch[i:i + 1]) for i in range(len(batch))]
    return [np.concatenate([r[k] for r in per_image]) for k in range(len(compiled.outputs))]
