"""What tools.benchmark times: the artifacts of output folders (IRs at each precision, torch, ONNX Runtime, the NumPy
reference), each a Target with its MACs and measured figures; the Python-timed runners and benchmark_app's
per-op counters."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compress.errors import InputError
from compress.render import md_table
from compress.report import read_report
from compress.runtime import (
    BF16_LEVELS,
    ISA_ENV,
    RuntimeGraph,
)
from compress.speed import BASELINE
from tools.benchmark_app import aggregate_perf, benchmark_app_cmd, parse_perf_counters, run_benchmark_app


@dataclass
class Target:
    label: str
    backend: str  # openvino | torch | onnxruntime | numpy
    precision: str  # f32 | default | int8
    path: str
    group: str
    input_size: int
    macs: int
    variant: str = "cloformer_xxs"
    role: str = ""  # plain | deploy | int8 | python
    latencies_ms: list[float] = field(default_factory=list)  # latency hint (or Python-timed)
    throughputs_fps: list[float] = field(default_factory=list)  # throughput hint (latency hint if not run)
    throughputs_bn_fps: list[float] = field(default_factory=list)  # throughput hint at batch N, images/s
    perf_by_type: dict[str, dict[str, float]] = field(default_factory=dict)  # --pc: op type -> ms, nodes
    runtime: RuntimeGraph | None = None
    isa: str = ""  # oneDNN ISA imposed with ONEDNN_MAX_CPU_ISA (--isa); "": this CPU's own

    def app_env(self) -> dict[str, str] | None:
        """benchmark_app's environment: the imposed ISA, if any."""
        return {**os.environ, ISA_ENV: self.isa} if self.isa else None

    def app_precision(self) -> str | None:
        """-infer_precision: f32 where asked, and under an imposed ISA without bf16 (what such a CPU defaults to:
        the plugin would pick bf16 from this CPU's flags and find no kernels for it)."""
        return "f32" if self.precision == "f32" or (self.isa and self.isa not in BF16_LEVELS) else None

    @property
    def latency_ms(self) -> float | None:
        return statistics.median(self.latencies_ms) if self.latencies_ms else None

    @property
    def throughput_fps(self) -> float | None:
        return statistics.median(self.throughputs_fps) if self.throughputs_fps else None

    @property
    def throughput_bn_fps(self) -> float | None:
        return statistics.median(self.throughputs_bn_fps) if self.throughputs_bn_fps else None


def perf_counters(t: Target, seconds: float, hint: str, device: str,
                  niter: int | None = None) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [*benchmark_app_cmd(t.path, t.input_size, seconds, hint, t.app_precision(), device, niter=niter),
               "-report_type", "average_counters", "-report_folder", tmp]
        run_benchmark_app(cmd, t.app_env())
        csv = Path(tmp) / "benchmark_average_counters_report.csv"
        if not csv.is_file():
            raise RuntimeError(f"benchmark_app wrote no {csv.name}: {' '.join(cmd)}")
        return aggregate_perf(parse_perf_counters(csv.read_text()))


def perf_table(targets: list[Target]) -> str:
    """Op types as rows, IRs as columns: ms (nodes); totals of the counters last."""
    shown = [t for t in targets if t.perf_by_type]
    keys: list[str] = []
    for t in shown:
        keys += [k for k in t.perf_by_type if k not in keys]
    keys.sort(key=lambda k: -max(t.perf_by_type.get(k, {"ms": 0})["ms"] for t in shown))
    rows = [[k, *(f"{t.perf_by_type[k]['ms']:.2f} ({t.perf_by_type[k]['nodes']:.0f})" if k in t.perf_by_type
                  else "–" for t in shown)] for k in keys]
    rows.append(["**total of counters**", *(f"{sum(v['ms'] for v in t.perf_by_type.values()):.2f}" for t in shown)])
    return md_table(["op type [exec precision]", *(t.label for t in shown)], rows)


# ---------------------------------------------------------------- Python-timed backends
def time_loop(fn, seconds: float) -> list[float]:
    fn()
    lat, t_end = [], time.perf_counter() + seconds
    while time.perf_counter() < t_end or len(lat) < 3:
        t = time.perf_counter()
        fn()
        lat.append((time.perf_counter() - t) * 1e3)
    return lat


def python_runner(t: Target):
    x = np.random.default_rng(0).standard_normal((1, 3, t.input_size, t.input_size)).astype(np.float32)
    if t.backend == "onnxruntime":
        import onnxruntime as ort

        sess = ort.InferenceSession(t.path, providers=["CPUExecutionProvider"])
        return lambda: sess.run(None, {sess.get_inputs()[0].name: x})
    import cloformer

    model = cloformer.create_model(t.variant, checkpoint=t.path, allow_pruned=True).eval()
    if t.backend == "numpy":
        import reference_np as rn

        w = {k: v.numpy() for k, v in model.state_dict().items()}
        return lambda: rn.forward(w, x)
    import torch

    xt = torch.from_numpy(x)

    def run() -> None:
        with torch.inference_mode():
            model(xt)
    return run


# ---------------------------------------------------------------- discovery
def plain_ir(variant: str, checkpoint: str, size: int, folder: Path) -> Path:
    """The baseline IR: the training-form model through ov.convert_model, saved in FP32."""
    import openvino as ov

    from compress import export, loading

    xml = folder / f"plain_fp32_{size}.xml"
    ov.save_model(export.convert_plain(loading.load(variant, checkpoint, size)), str(xml), compress_to_fp16=False)
    return xml


def discover(folders: list[Path], python_backends: bool = True, numpy_backend: bool = True,
             baseline_dir: Path | None = None, input_size: int | None = None) -> list[Target]:
    """Targets of every folder, the plain FP32 baseline (built into baseline_dir) first, each at `input_size`
    (default: the folder's own; the IRs reshape to any multiple of 32)."""
    import cloformer
    from compress.runtime import default_precision
    from reference_np.macs import count_macs

    default_prec = default_precision()  # bf16 on BF16-capable CPUs, f32 elsewhere
    targets: list[Target] = []
    for n, folder in enumerate(folders):
        rep_path = folder / "report.json"
        if not rep_path.is_file():
            raise InputError(f"{folder} has no report.json (expected a compress.quantize/prune output folder)")
        try:
            m = read_report(rep_path).model
        except ValueError as e:
            raise InputError(str(e)) from None
        size, variant = input_size or m.input_size, m.variant
        ckpt = str(folder / m.pruned_checkpoint) if m.pruned_checkpoint else m.checkpoint
        macs = count_macs(cloformer.create_model(variant, checkpoint=ckpt, allow_pruned=True).plan,
                          size, size)["total"]
        g = folder.name
        if n == 0 and baseline_dir is not None:
            base_macs = count_macs(cloformer.create_model(variant, checkpoint=m.checkpoint).plan, size, size)["total"]
            xml = str(plain_ir(variant, m.checkpoint, size, baseline_dir))
            targets += [Target(f"{BASELINE} default({default_prec})", "openvino", "default", xml, g, size, base_macs,
                               variant, "plain"),
                        Target(f"{BASELINE} f32", "openvino", "f32", xml, g, size, base_macs, variant, "plain")]
        for xml in sorted(folder.glob("*.xml")):
            stem = xml.stem.replace("model_", "")
            if "int8" in stem:
                targets.append(Target(f"{g}/{stem}", "openvino", "int8", str(xml), g, size, macs, variant, "int8"))
            else:
                targets.append(Target(f"{g}/{stem} default({default_prec})", "openvino", "default", str(xml), g,
                                      size, macs, variant, "deploy"))
                targets.append(Target(f"{g}/{stem} f32", "openvino", "f32", str(xml), g, size, macs, variant,
                                      "deploy"))
        if python_backends:
            onnx_files = sorted(folder.glob("*fp32*.onnx"))
            if onnx_files:
                targets.append(Target(f"{g}/onnxruntime fp32", "onnxruntime", "f32", str(onnx_files[0]), g, size,
                                      macs, variant, "python"))
            targets.append(Target(f"{g}/torch eager fp32", "torch", "f32", str(ckpt), g, size, macs, variant,
                                  "python"))
            if numpy_backend:
                targets.append(Target(f"{g}/numpy reference fp32", "numpy", "f32", str(ckpt), g, size, macs, variant,
                                      "python"))
    if not targets:
        raise InputError("no models found to benchmark")
    return targets
