"""What OpenVINO's CPU plugin really executes: counts of the runtime graph's executed nodes by layer type
and by execution precision, Reorders included (compiled_model.get_runtime_model()).

At batch 1 CloFormer is bound by executed nodes, not by arithmetic, so these counts are the bar a deploy
graph is held to. They depend on the OpenVINO version and the CPU ISA (recorded beside them), not on
timing noise; two compilations of the same model can still differ by one or two Reorders
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

NODE_COMPILES = 3  # compilations counted for executed nodes (the plugin's layout choice moves one or two Reorders)
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_flags() -> set[str]:
    """The CPU's feature flags (from /proc/cpuinfo; empty where it cannot be read)."""
    m = re.search(r"flags\s*:\s*(.*)", _cpuinfo())
    return set(m.group(1).split()) if m else set()


ISA_ENV = "ONEDNN_MAX_CPU_ISA"  # oneDNN's cap on the ISA its kernels use, read once per process
_AVX512 = ("avx512f", "avx512bw", "avx512vl", "avx512dq")
# oneDNN's ISA names, oldest first, with the /proc/cpuinfo flags each needs
ISA_LEVELS: dict[str, tuple[str, ...]] = {
    "AVX2": ("avx2", "fma"),
    "AVX2_VNNI": ("avx2", "fma", "avx_vnni"),
    "AVX512_CORE": _AVX512,
    "AVX512_CORE_VNNI": (*_AVX512, "avx512_vnni"),
    "AVX512_CORE_BF16": (*_AVX512, "avx512_vnni", "avx512_bf16"),
    "AVX512_CORE_AMX": (*_AVX512, "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"),
}
# no int8 dot product (no VNNI): oneDNN sums u8*s8 products pairwise in int16 (vpmaddubsw), with saturation
SATURATING_LEVELS = frozenset({"AVX2", "AVX512_CORE"})
BF16_LEVELS = frozenset({"AVX512_CORE_BF16", "AVX512_CORE_AMX"})  # where the plugin's default precision is bf16


def isa_levels() -> list[str]:
    """The ISA levels this CPU can run (and so impose with ONEDNN_MAX_CPU_ISA), oldest first."""
    flags = cpu_flags()
    return [name for name, need in ISA_LEVELS.items() if set(need) <= flags]


def imposed_isa() -> str | None:
    """ONEDNN_MAX_CPU_ISA as this process's environment sets it (upper case), or None."""
    return os.environ.get(ISA_ENV, "").strip().upper() or None


def own_isa() -> str:
    """The level this process runs: the imposed one, else the newest the CPU has."""
    levels = isa_levels()
    return imposed_isa() or (levels[-1] if levels else "unknown")


def _imposed_without_bf16() -> bool:
    # The plugin picks its default precision from the CPU's own flags, not from oneDNN's cap: under an imposed
    # ISA without bf16 on a BF16 CPU it would still choose bf16 and then find no kernels (Softmax refuses to
    # compile under AVX2). A CPU of that ISA defaults to f32, so that is what an imposed run uses.
    isa = imposed_isa()
    return isa is not None and isa in ISA_LEVELS and isa not in BF16_LEVELS


def cpu_config(device: str, precision: str | None) -> dict[str, str]:
    """The precision hint to compile with on `device`: `precision` when given; None (the device's default) is f32
    under an imposed ISA without bf16, as on a CPU of that ISA, and no hint otherwise."""
    if not device.upper().startswith("CPU"):
        return {}
    if precision:
        return {"INFERENCE_PRECISION_HINT": precision}
    return {"INFERENCE_PRECISION_HINT": "f32"} if _imposed_without_bf16() else {}


def cpu_isa() -> str:
    """The CPU's relevant ISA flags, e.g. 'avx2 avx512f avx512_vnni avx512_bf16' (from /proc/cpuinfo)."""
    flags = cpu_flags()
    if not flags:
        return "unknown"
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

    compiled = compile_ov(model, device, precision, PERF_COUNT=True)
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
    (INFERENCE_PRECISION_HINT): bf16 on AVX-512-BF16/AMX CPUs, f32 on AVX2-only ones, possibly f16 elsewhere;
    f32 under an imposed ISA without bf16 (cpu_config)."""
    import openvino as ov

    if device.upper().startswith("CPU") and _imposed_without_bf16():
        return "f32"
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


def compile_ov(model: Any, device: str = "CPU", precision: str | None = "f32", *, shape: list[int] | None = None,
               core: Any = None, **config: Any) -> Any:
    """The one way this package compiles an OpenVINO model: an IR path or ov.Model, reshaped (on a copy) to `shape`
    when given, for `device` with any further properties. On CPU, precision 'f32' forces true FP32 (a BF16-capable
    CPU would otherwise run FP32 IRs in BF16 silently); None is the device's default, as deployed."""
    import openvino as ov

    core = core or ov.Core()
    if shape is not None:
        model = core.read_model(str(model)) if isinstance(model, (str, os.PathLike)) else model.clone()
        model.reshape(shape)
    cfg: dict[str, Any] = {**cpu_config(device, precision), **config}
    return core.compile_model(str(model) if isinstance(model, (str, os.PathLike)) else model, device, cfg)


def run_ov(compiled: Any, batch: np.ndarray) -> list[np.ndarray]:
    """All outputs for a batch, run in the compiled model's own static batch: image by image for a batch-1 IR,
    N at a time for a static batch-N one (the last chunk padded by repeating its first image)."""
    first = compiled.input(0).get_partial_shape()[0]
    n = first.get_length() if first.is_static else 1
    outs = []
    for i in range(0, len(batch), n):
        chunk = batch[i:i + n]
        pad = n - len(chunk)
        res = compiled(np.concatenate([chunk, np.repeat(chunk[:1], pad, axis=0)]) if pad else chunk)
        outs.append([res[k][:len(chunk)] for k in range(len(compiled.outputs))])
    return [np.concatenate([o[k] for o in outs]) for k in range(len(compiled.outputs))]
