"""The INT8 IR on each instruction set OpenVINO's CPU plugin dispatches to: the report's ISA matrix.

What an INT8 IR computes depends on the CPU that runs it. Without an int8 dot-product instruction (AVX2 and plain
AVX-512, no VNNI), oneDNN multiplies u8 activations by s8 weights with vpmaddubsw, which adds each pair of
products in int16 with saturation; with VNNI or AMX the products are summed in int32. The CPU plugin honours
oneDNN's ONEDNN_MAX_CPU_ISA, read once per process, so one machine runs the same IR as every older ISA, one
subprocess each. Each row records the kernels that ran (the runtime graph's primitiveType), so the switch is
checked, not assumed. An imposed ISA shows that ISA's kernels and numerics, not an older CPU's clocks or caches.

    python -m compress.isa MODEL.xml DATA.npz OUT.json ISA   # one row, run by isa_matrix in a child process
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .runtime import ISA_ENV, ISA_LEVELS, SATURATING_LEVELS, imposed_isa, isa_levels, own_isa

# kernel-name parts of ISAs newer than a level: a row whose kernels carry one did not run as imposed
_NEWER = {"AVX2": ("avx512", "amx"), "AVX2_VNNI": ("avx512", "amx"), "AVX512_CORE": ("amx",),
          "AVX512_CORE_VNNI": ("amx",), "AVX512_CORE_BF16": ("amx",), "AVX512_CORE_AMX": ()}
KERNEL_LAYERS = ("Convolution", "MatMul", "FullyConnected")  # whose primitiveType a row counts


def resolve(spec: str) -> list[str]:
    """The levels an isa_matrix value asks for on this CPU, oldest first. `default` is AVX2 (what a CPU without
    VNNI computes) and the native level; `all`, every level the CPU allows. A level the CPU cannot run is refused."""
    can = isa_levels()
    if spec == "none":
        return []
    if spec == "all":
        wanted = can
    elif spec == "default":
        wanted = [lv for lv in ("AVX2",) if lv in can]
    else:
        wanted = [s.strip().upper() for s in spec.split(",")]
        unknown = [lv for lv in wanted if lv not in ISA_LEVELS]
        if unknown or not wanted:
            raise InputError(f"isa_matrix '{spec}': expected none, default, all or a comma-separated list of "
                             f"{', '.join(ISA_LEVELS)}", field="isa_matrix")
        missing = [lv for lv in wanted if lv not in can]
        if missing:
            need = ", ".join(f"{lv} needs {' '.join(ISA_LEVELS[lv])}" for lv in missing)
            raise InputError(f"isa_matrix: this CPU cannot run {', '.join(missing)} ({need}; it has "
                             f"{', '.join(can) or 'none of them'})", field="isa_matrix")
    if spec in ("default", "all") and own_isa() in ISA_LEVELS:
        wanted = [*wanted, own_isa()]
    order = list(ISA_LEVELS)
    return sorted(set(wanted), key=lambda lv: order.index(lv) if lv in order else len(order))


def kernels(compiled: Any) -> Counter[str]:
    """primitiveType of the executed convolutions and MatMuls of a compiled model (after one inference)."""
    out: Counter[str] = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt = op.get_rt_info()
        if rt["layerType"].astype(str) in KERNEL_LAYERS and rt["execTimeMcs"].astype(str) != "not_executed":
            out[rt["primitiveType"].astype(str)] += 1
    return out


def probe_kernel() -> str:
    """primitiveType of one small convolution compiled at the device's defaults in this process: the kernel family
    the ISA in force really selects (a run says which ISA it used, not which one it asked for)."""
    import openvino as ov
    import openvino.opset13 as ops

    from .runtime import compile_counted

    x = ops.parameter([1, 32, 8, 8], np.float32, name="x")
    w = ops.constant(np.random.default_rng(0).standard_normal((32, 32, 3, 3)).astype(np.float32))
    compiled, _ = compile_counted(ov.Model([ops.convolution(x, w, [1, 1], [1, 1], [1, 1], [1, 1])], [x], "probe"))
    return ", ".join(sorted(kernels(compiled))) or "none"


def as_imposed(level: str, names: dict[str, int]) -> bool:
    """True when no kernel of an ISA newer than `level` ran."""
    return not any(part in k.lower() for k in names for part in _NEWER.get(level, ()))


def measure_row(xml: Path, data: dict[str, np.ndarray], level: str, is_native: bool) -> Any:
    """One row, in this process's ISA: OpenVINO against the NumPy run of the IR (f32 hint and default precision)
    and INT8 at the default precision against the FP32 logits given."""
    from .metrics import compare_int8, graph_agreement
    from .report import IsaRow
    from .runtime import compile_counted, compile_ov, default_precision, run_ov

    t0 = time.perf_counter()
    prec = default_precision()
    compiled, _ = compile_counted(str(xml), "CPU", None)
    names = dict(kernels(compiled).most_common())
    graph_x, graph_logits = data["graph_x"], data["graph_logits"]
    f32 = run_ov(compile_ov(str(xml), "CPU", "f32"), graph_x)[0]
    default = run_ov(compiled, graph_x)[0]
    yardstick = float(data["graph_f32_sqnr_db"])
    val = run_ov(compiled, data["val_x"])[0]
    labels = data["labels"] if data["labels"].size else None
    return IsaRow(level, is_native, level in SATURATING_LEVELS, prec, names, as_imposed(level, names),
                  graph_agreement(f32, graph_logits, "CPU", "f32", None, yardstick),
                  graph_agreement(default, graph_logits, "CPU", prec, None, yardstick),
                  compare_int8(data["fp32_logits"], val, labels, str(data["source"])),
                  round(time.perf_counter() - t0, 2))


def isa_matrix(xml: Path, levels: list[str], graph_x: np.ndarray, graph_logits: np.ndarray,
               graph_f32_sqnr_db: float, val_x: np.ndarray, fp32_logits: np.ndarray, labels: np.ndarray | None,
               source: str) -> list[Any]:
    """One IsaRow per level, each measured by a child process that runs under ONEDNN_MAX_CPU_ISA=level (the
    native level inherits this process's environment)."""

    from .progress import Progress
    from .report import IsaRow, from_plain

    rows = []
    own = own_isa()
    with tempfile.TemporaryDirectory(prefix="isa-") as tmp:
        data = Path(tmp) / "data.npz"
        np.savez(data, graph_x=graph_x, graph_logits=graph_logits, graph_f32_sqnr_db=graph_f32_sqnr_db,
                 val_x=val_x, fp32_logits=fp32_logits, labels=np.array([]) if labels is None else labels,
                 source=source)
        for level in Progress(levels, desc="ISA matrix", unit="ISA"):
            env = dict(os.environ)
            if level != own or imposed_isa() is not None:
                env[ISA_ENV] = level
            out = Path(tmp) / f"{level}.json"
            proc = subprocess.run([sys.executable, "-m", "compress.isa", str(xml), str(data), str(out), level,
                                   "native" if level == own else "imposed"], env=env, capture_output=True,
                                  text=True, check=False)
            if proc.returncode != 0 or not out.is_file():
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                raise RuntimeError(f"ISA matrix: the {level} run failed (exit {proc.returncode}): {tail}")
            rows.append(from_plain(IsaRow, json.loads(out.read_text())))
    return rows


def main(argv: list[str] | None = None) -> int:
    from .report import to_plain

    xml, data_path, out, level, kind = argv if argv is not None else sys.argv[1:]
    with np.load(data_path) as z:
        data = {k: z[k] for k in z.files}
    row = measure_row(Path(xml), data, level, kind == "native")
    Path(out).write_text(json.dumps(to_plain(row)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
