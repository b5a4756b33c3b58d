"""Benchmark every artifact of one or more output folders side by side, with OpenVINO's benchmark_app.

    python -m tools.benchmark outputs/run-int8 [outputs/run-pruned ...] [-t 10] [--rounds 3] [--hint latency]

For each folder (written by compress.quantize / compress.prune) it measures, in one run and alternating
the order between rounds so machine drift hits all alike:
  - every FP32 IR twice: `-infer_precision f32` (true FP32) and the device default (BF16 on a BF16-capable
    CPU; on others it equals f32 and the label says so),
  - every INT8 IR at the device default,
  - torch eager FP32, ONNX Runtime FP32 and the NumPy reference (latency only; Python-timed).
Medians over rounds; ratios against the first folder's true-FP32 and BF16 IRs; MACs and achieved GMAC/s
next to an estimate of the CPU's INT8 peak. Writes benchmark.md, benchmark.json and benchmark.png.

With --pc, after the timed rounds, every IR is run once more with benchmark_app's average performance
counters (`-report_type average_counters`, the CSV form of `-pc`), and the time per op type and execution
precision is tabulated side by side: where INT8 does (not) win, and which ops stay in f32 or add Reorders.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from compress.atomic import staging_dir
from compress.report import md_table, versions

FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
VNNI_MACS_PER_CYCLE = 128  # int8 MACs/cycle/core: two 512-bit VPDPBUSD per cycle (an assumption; see README)


@dataclass
class Target:
    label: str
    backend: str  # openvino | torch | onnxruntime | numpy
    precision: str  # f32 | bf16-default | int8 | ...
    path: str
    group: str
    input_size: int
    macs: int
    variant: str = "cloformer_xxs"
    latencies_ms: list[float] = field(default_factory=list)
    throughputs_fps: list[float] = field(default_factory=list)
    perf_by_type: dict[str, dict[str, float]] = field(default_factory=dict)  # --pc: op type -> ms, nodes

    @property
    def latency_ms(self) -> float | None:
        return statistics.median(self.latencies_ms) if self.latencies_ms else None

    @property
    def throughput_fps(self) -> float | None:
        return statistics.median(self.throughputs_fps) if self.throughputs_fps else None


# ---------------------------------------------------------------- benchmark_app
_NUM = r"([0-9]+(?:\.[0-9]+)?)"
# benchmark_app prints latencies in "us" when the average is under 1 ms (format_console_latency), else "ms";
# "s" is accepted too. Every latency is normalised to ms.
_UNIT_MS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}
_LAT = rf"{_NUM}\s*(us|µs|ms|s)\b"
LATENCY_PATTERNS = {"median_ms": rf"Median:\s+{_LAT}", "average_ms": rf"Average:\s+{_LAT}",
                    "min_ms": rf"Min:\s+{_LAT}", "max_ms": rf"Max:\s+{_LAT}"}
OTHER_PATTERNS = {"throughput_fps": rf"Throughput:\s+{_NUM}\s*FPS", "count": r"Count:\s+([0-9]+)\s*iterations"}


def parse_benchmark_app(text: str) -> dict[str, float]:
    """The final statistics of a benchmark_app run: latency median/average/min/max in ms (whatever unit it
    printed), FPS, iteration count. Only the overall statistics block counts (the first figures after the
    last 'Count:' line), not the per-shape-group ones printed after it."""
    start = text.rfind("Count:")
    block = text[start:] if start >= 0 else text
    out: dict[str, float] = {}
    for key, pat in LATENCY_PATTERNS.items():
        m = re.search(pat, block)
        if m:
            out[key] = float(m.group(1)) * _UNIT_MS[m.group(2)]
    for key, pat in OTHER_PATTERNS.items():
        m = re.search(pat, block)
        if m:
            out[key] = float(m.group(1))
    if "median_ms" not in out or "throughput_fps" not in out:
        raise ValueError("benchmark_app output has no Median latency / Throughput line:\n" + text[-2000:])
    return out


def parse_perf_counters(csv_text: str) -> list[dict[str, Any]]:
    """Rows of benchmark_app's average_counters CSV that executed: name, layer type, exec type, ms."""
    rows = []
    for line in csv_text.splitlines()[1:]:
        f = line.split(";")
        if len(f) < 6 or f[0] == "Total" or f[1] != "Status.EXECUTED":
            continue
        rows.append({"name": f[0], "layer_type": f[2], "exec_type": f[3], "real_ms": float(f[4])})
    if not rows:
        raise ValueError("performance-counter report has no executed layers")
    return rows


def exec_precision(exec_type: str) -> str:
    """The precision suffix of an exec type: 'brgconv_avx2_I8' -> 'i8', 'jit_uni_f32' -> 'f32'."""
    tail = exec_type.rsplit("_", 1)[-1].lower()
    return tail if tail in ("i8", "u8", "f32", "bf16", "f16", "i32") else "other"


def aggregate_perf(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Time per 'layer type [precision]' (ms, node count), largest first."""
    agg: dict[str, dict[str, float]] = {}
    for r in rows:
        a = agg.setdefault(f"{r['layer_type']} [{exec_precision(r['exec_type'])}]", {"ms": 0.0, "nodes": 0})
        a["ms"] += r["real_ms"]
        a["nodes"] += 1
    return dict(sorted(agg.items(), key=lambda kv: -kv[1]["ms"]))


def perf_counters(t: Target, seconds: float, hint: str, device: str) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        prec = "f32" if t.precision == "f32" else None
        cmd = [*benchmark_app_cmd(t.path, t.input_size, seconds, hint, prec, device),
               "-report_type", "average_counters", "-report_folder", tmp]
        run_benchmark_app(cmd)
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


def benchmark_app_cmd(xml: str, size: int, seconds: float, hint: str, precision: str | None,
                      device: str = "CPU") -> list[str]:
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    cmd = [exe, "-m", xml, "-d", device, "-hint", hint, "-t", str(max(1, round(seconds))),  # whole seconds
           "-shape", f"[1,3,{size},{size}]"]
    if precision:
        cmd += ["-infer_precision", precision]
    return cmd


def run_benchmark_app(cmd: list[str]) -> tuple[dict[str, float], str]:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"benchmark_app failed ({r.returncode}): {' '.join(cmd)}\n"
                           f"{r.stdout[-1500:]}{r.stderr[-1500:]}")
    return parse_benchmark_app(r.stdout), r.stdout


# ---------------------------------------------------------------- Python-timed backends
def _time_loop(fn, seconds: float) -> list[float]:
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
def discover(folders: list[Path], python_backends: bool = True, numpy_backend: bool = True) -> list[Target]:
    import cloformer
    from compress.pipeline import default_precision
    from reference_np.macs import count_macs

    default_prec = default_precision()  # bf16 on BF16-capable CPUs, f32 elsewhere
    targets: list[Target] = []
    for folder in folders:
        rep_path = folder / "report.json"
        if not rep_path.is_file():
            raise FileNotFoundError(f"{folder} has no report.json (expected a compress.quantize/prune output folder)")
        rep = json.loads(rep_path.read_text())
        m = rep["model"]
        size, variant = int(m["input_size"]), m["variant"]
        ckpt = m.get("pruned_checkpoint") or m["checkpoint"]
        if m.get("pruned_checkpoint"):
            ckpt = str(folder / ckpt)
        macs = count_macs(cloformer.create_model(variant, checkpoint=ckpt, allow_pruned=True).plan,
                          size, size)["total"]
        g = folder.name
        for xml in sorted(folder.glob("*.xml")):
            stem = xml.stem.replace("model_", "")
            if "int8" in stem:
                targets.append(Target(f"{g}/{stem}", "openvino", "int8", str(xml), g, size, macs, variant))
            else:
                targets.append(Target(f"{g}/{stem} f32", "openvino", "f32", str(xml), g, size, macs, variant))
                targets.append(Target(f"{g}/{stem} default({default_prec})", "openvino", "default", str(xml), g,
                                      size, macs, variant))
        if python_backends:
            onnx_files = sorted(folder.glob("*fp32*.onnx"))
            if onnx_files:
                targets.append(Target(f"{g}/onnxruntime fp32", "onnxruntime", "f32", str(onnx_files[0]), g, size,
                                      macs, variant))
            targets.append(Target(f"{g}/torch eager fp32", "torch", "f32", str(ckpt), g, size, macs, variant))
            if numpy_backend:
                targets.append(Target(f"{g}/numpy reference fp32", "numpy", "f32", str(ckpt), g, size, macs, variant))
    if not targets:
        raise ValueError("no models found to benchmark")
    return targets


# ---------------------------------------------------------------- machine
def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["cpu"] = re.search(r"model name\s*:\s*(.*)", text).group(1).strip()
        flags = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split())
        info["flags"] = {f: f in flags for f in FLAGS}
        mhz = [float(v) for v in re.findall(r"cpu MHz\s*:\s*([0-9.]+)", text)]
        info["mhz"] = max(mhz) if mhz else None
    except (OSError, AttributeError):
        info.setdefault("cpu", "unknown")
    vnni = info.get("flags", {}).get("avx512_vnni")
    if info.get("mhz") and vnni:
        info["int8_peak_gmacs_estimate"] = round(info["cores"] * info["mhz"] / 1e3 * VNNI_MACS_PER_CYCLE, 1)
    return info


# ---------------------------------------------------------------- run
def measure(targets: list[Target], rounds: int, seconds: float, hint: str, device: str, log_dir: Path | None,
            python_seconds: float | None = None) -> None:
    runners: dict[str, Any] = {}
    for r in range(rounds):
        order = targets if r % 2 == 0 else list(reversed(targets))
        for t in order:
            if t.backend == "openvino":
                cmd = benchmark_app_cmd(t.path, t.input_size, seconds, hint,
                                        "f32" if t.precision == "f32" else None, device)
                stats, raw = run_benchmark_app(cmd)
                t.latencies_ms.append(stats["median_ms"])
                t.throughputs_fps.append(stats["throughput_fps"])
                if log_dir is not None and r == 0:
                    (log_dir / f"benchmark_app_{t.label.replace('/', '_').replace(' ', '_')}.txt").write_text(
                        " ".join(cmd) + "\n" + raw)
            elif hint == "latency":
                if t.label not in runners:
                    runners[t.label] = python_runner(t)
                lat = _time_loop(runners[t.label], python_seconds or seconds)
                t.latencies_ms.append(statistics.median(lat))
                t.throughputs_fps.append(1e3 / statistics.median(lat))
            last = t.latencies_ms[-1] if t.latencies_ms else float("nan")
            print(f"  round {r + 1}/{rounds} {t.label:50s} {last:8.2f} ms", flush=True)


def ratios(targets: list[Target]) -> dict[str, dict[str, float | None]]:
    """Speed-ups (baseline latency / latency) against the first folder's true-FP32 and BF16 FP32 IRs."""
    first = targets[0].group
    base_f32 = next((t for t in targets if t.group == first and t.backend == "openvino" and t.precision == "f32"), None)
    base_bf16 = next((t for t in targets if t.group == first and t.backend == "openvino" and
                      t.precision == "default"), None)
    out = {}
    for t in targets:
        lat = t.latency_ms
        out[t.label] = {
            "vs_fp32": base_f32.latency_ms / lat if base_f32 and lat else None,
            "vs_bf16": base_bf16.latency_ms / lat if base_bf16 and lat else None,
            "gmacs_per_s": t.macs / (lat * 1e6) if lat else None,
        }
    return out


def write_outputs(targets: list[Target], rat: dict, mach: dict, args: argparse.Namespace, out: Path) -> str:
    rows = []
    for t in targets:
        r = rat[t.label]
        rows.append([t.label, t.backend, t.precision, f"{t.macs / 1e6:.0f}",
                     f"{t.latency_ms:.2f}" if t.latency_ms else "–",
                     f"{t.throughput_fps:.0f}" if t.throughput_fps else "–",
                     f"{r['vs_fp32']:.2f}x" if r["vs_fp32"] else "–", f"{r['vs_bf16']:.2f}x" if r["vs_bf16"] else "–",
                     f"{r['gmacs_per_s']:.1f}" if r["gmacs_per_s"] else "–"])
    header = ["model", "backend", "precision", "MMACs", f"{args.hint} median ms", "FPS", "vs FP32 (f32)",
              "vs FP32 default", "GMAC/s"]
    table = md_table(header, rows)
    peak = mach.get("int8_peak_gmacs_estimate")
    text = "\n".join([
        f"# CloFormer benchmark ({datetime.now():%Y-%m-%d %H:%M})", "",
        f"`{' '.join(['python -m tools.benchmark', *sys.argv[1:]])}`", "",
        f"Machine: {mach.get('cpu')}, {mach.get('cores')} cores; flags: "
        + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in mach.get("flags", {}).items()), "",
        f"benchmark_app -d {args.device} -hint {args.hint} -t {args.t}, batch 1, static shape; "
        f"median of {args.rounds} alternating rounds. INT8 peak estimate: "
        f"{peak if peak else 'n/a'} GMAC/s ({VNNI_MACS_PER_CYCLE} int8 MAC/cycle/core assumed).", "", table, ""])
    if any(t.perf_by_type for t in targets):
        text += "\n".join([
            "", "## Time per op type (benchmark_app average performance counters)", "",
            "ms summed over the nodes of each type (node count); the exec precision is the kernel that ran. "
            "One separate run per IR after the timed rounds, so totals differ from the medians above.", "",
            perf_table(targets), ""])
    (out / "benchmark.md").write_text(text)
    data = {"command": sys.argv, "machine": mach, "versions": versions(), "hint": args.hint, "seconds": args.t,
            "rounds": args.rounds, "targets": [{**asdict(t), "latency_ms": t.latency_ms,
                                                "throughput_fps": t.throughput_fps, **rat[t.label]} for t in targets]}
    (out / "benchmark.json").write_text(json.dumps(data, indent=2) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [t for t in targets if t.latency_ms]
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(shown) + 1.5))
    colors = {"openvino": "#2980b9", "torch": "#e67e22", "onnxruntime": "#8e44ad", "numpy": "#7f8c8d"}
    ax.barh([t.label for t in shown], [t.latency_ms for t in shown], color=[colors[t.backend] for t in shown])
    for i, t in enumerate(shown):
        r = rat[t.label]["vs_fp32"]
        ax.text(t.latency_ms, i, f" {t.latency_ms:.2f} ms" + (f" ({r:.2f}x)" if r else ""), va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{args.hint} median (ms), batch 1; (x) = speed-up vs true FP32 IR")
    ax.set_title(f"CloFormer on {mach.get('cpu')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "benchmark.png", dpi=110)
    plt.close(fig)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path, help="output folders of compress.quantize / compress.prune")
    ap.add_argument("-t", type=int, default=10, help="whole seconds per benchmark_app run (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hint", choices=["latency", "throughput"], default="latency")
    ap.add_argument("-d", "--device", default="CPU")
    ap.add_argument("--python-seconds", type=float, default=None, help="timing window of torch/ORT/NumPy runs")
    ap.add_argument("--no-python", action="store_true", help="skip torch, ONNX Runtime and NumPy")
    ap.add_argument("--no-numpy", action="store_true", help="skip the NumPy reference")
    ap.add_argument("--pc", action="store_true",
                    help="also tabulate benchmark_app performance counters per op type for every IR")
    ap.add_argument("--out", type=Path, default=None, help="default: outputs/benchmark-<time>")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    try:
        targets = discover(args.folders, not args.no_python, not args.no_numpy)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or Path("outputs") / f"benchmark-{datetime.now():%Y%m%d-%H%M%S}"
    with staging_dir(out, force=True) as tmp:
        measure(targets, args.rounds, args.t, args.hint, args.device, tmp, args.python_seconds)
        if args.pc:
            for t in targets:
                if t.backend == "openvino":
                    print(f"  performance counters {t.label}", flush=True)
                    t.perf_by_type = perf_counters(t, args.t, args.hint, args.device)
        text = write_outputs(targets, ratios(targets), machine(), args, tmp)
    print(text)
    print(f"wrote {out}/benchmark.md, benchmark.json, benchmark.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
