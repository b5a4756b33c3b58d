"""Benchmark every artifact of one or more output folders side by side, with OpenVINO's benchmark_app.

    python -m tools.benchmark outputs/run-int8 [outputs/run-pruned ...] [-t 10] [--rounds 3] [--hint both]
        [--batch 8]

The baseline, defined once: **plain FP32** is the first folder's checkpoint converted with
`ov.convert_model(torch_model, example_input)` and compiled with the CPU's defaults (BF16 on BF16 CPUs) —
what a user gets without this tool. Every speed ratio is against it, measured in the same run.

For each folder (written by compress.quantize / compress.prune) it measures, in one run and alternating
the order between rounds so machine drift hits all alike:
  - plain FP32 (first folder only), at the device default and with `-infer_precision f32`,
  - the deploy FP32 IR at the device default and at f32, and the INT8 IR at the device default,
  - torch eager FP32, ONNX Runtime FP32 and the NumPy reference (latency only; Python-timed).
`--isa AVX2,...` runs every IR again under each imposed ISA (ONEDNN_MAX_CPU_ISA), with its own baseline.
`--hint latency` times batch-1 latency, `throughput` the FPS under the throughput hint, `both` (default) does
both in the same rounds, and with --batch N (default 8) the FPS at batch N under the throughput hint too (every
IR reshapes to it). Medians over rounds; MACs and achieved GMAC/s.

Every IR's runtime graph is counted too (executed nodes by type and precision, Reorders included; see
compress.runtime): deterministic for a given CPU ISA, recorded with it. With --pc each IR also runs once
with benchmark_app's average performance counters, tabulated per op type and execution precision.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from compress import isa
from compress.atomic import check_apart, staging_dir
from compress.errors import InputError
from compress.render import md_table, runtime_table
from compress.report import read_report, versions
from compress.runtime import (
    BF16_LEVELS,
    ISA_ENV,
    RuntimeGraph,
    cpu_isa,
    cpu_model,
    isa_levels,
    own_isa,
    runtime_graph,
)
from compress.runtime import ISA_FLAGS as FLAGS
from compress.speed import BASELINE, measure_speed
from tools.benchmark_app import aggregate_perf, benchmark_app_cmd, parse_perf_counters, run_benchmark_app

IMPOSED_NOTE = ("An imposed ISA shows that ISA's kernels and numerics on this CPU, not an older CPU's clocks, "
                "caches or memory: read its ratios, not its milliseconds, as what a CPU of that ISA would gain.")
VNNI_MACS_PER_CYCLE = 128  # int8 MACs/cycle/core: two 512-bit VPDPBUSD per cycle (an assumption; see README)


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












def perf_counters(t: Target, seconds: float, hint: str, device: str) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [*benchmark_app_cmd(t.path, t.input_size, seconds, hint, t.app_precision(), device),
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
def plain_ir(variant: str, checkpoint: str, size: int, folder: Path) -> Path:
    """The baseline IR: the training-form model through ov.convert_model, saved in FP32."""
    import openvino as ov

    from compress import export, loading

    xml = folder / f"plain_fp32_{size}.xml"
    ov.save_model(export.convert_plain(loading.load(variant, checkpoint, size)), str(xml), compress_to_fp16=False)
    return xml


def discover(folders: list[Path], python_backends: bool = True, numpy_backend: bool = True,
             baseline_dir: Path | None = None) -> list[Target]:
    """Targets of every folder, the plain FP32 baseline (built into baseline_dir) first."""
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
        size, variant = m.input_size, m.variant
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


def imposed(targets: list[Target], levels: list[str]) -> list[Target]:
    """The OpenVINO targets again under each imposed ISA. Where that ISA has no BF16 the device default is f32, so
    the f32-hint twin of a default target would time the same thing twice and is left out."""
    from compress.runtime import default_precision

    native = f"default({default_precision()})"
    out = []
    for lv in levels:
        for t in targets:
            if t.backend != "openvino" or (lv not in BF16_LEVELS and t.precision == "f32"):
                continue
            label = t.label if lv in BF16_LEVELS else t.label.replace(native, "default(f32)")
            out.append(replace(t, label=f"{label} @{lv}", isa=lv, latencies_ms=[], throughputs_fps=[],
                               throughputs_bn_fps=[]))
    return out


# ---------------------------------------------------------------- machine
def machine() -> dict[str, Any]:
    isa = set(cpu_isa().split())  # the one reading of the ISA flags (compress.runtime)
    info: dict[str, Any] = {"cores": os.cpu_count(), "flags": {f: f in isa for f in FLAGS}}
    info.update(cpu_model())
    vnni = info.get("flags", {}).get("avx512_vnni")
    if info.get("mhz") and vnni:
        info["int8_peak_gmacs_estimate"] = round(info["cores"] * info["mhz"] / 1e3 * VNNI_MACS_PER_CYCLE, 1)
    return info


# ---------------------------------------------------------------- run
def hints_of(hint: str) -> list[str]:
    return ["latency", "throughput"] if hint == "both" else [hint]


def measure(targets: list[Target], rounds: int, seconds: float, hint: str, device: str, log_dir: Path | None,
            python_seconds: float | None = None, batch: int = 1) -> None:
    """Alternating rounds over every target (and every hint of `hint`, and the throughput hint at batch `batch`
    when > 1): medians resist drift and noise."""
    runners: dict[str, Any] = {}
    runs = [(h, 1) for h in hints_of(hint)] + ([("throughput", batch)] if batch > 1 and hint != "latency" else [])
    for r in range(rounds):
        order = targets if r % 2 == 0 else list(reversed(targets))
        for t in order:
            if t.backend == "openvino":
                for h, n in runs:
                    cmd = benchmark_app_cmd(t.path, t.input_size, seconds, h, t.app_precision(), device, n)
                    stats, raw = run_benchmark_app(cmd, t.app_env())
                    if n > 1:
                        t.throughputs_bn_fps.append(stats["throughput_fps"])
                        h = f"{h}_b{n}"
                    elif h == "latency":
                        t.latencies_ms.append(stats["median_ms"])
                    if n == 1 and (h == "throughput" or hint != "both"):
                        t.throughputs_fps.append(stats["throughput_fps"])
                    if log_dir is not None and r == 0:
                        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{t.label}_{h}")
                        (log_dir / f"benchmark_app_{name}.txt").write_text(" ".join(cmd) + "\n" + raw)
            elif hint != "throughput":
                if t.label not in runners:
                    runners[t.label] = python_runner(t)
                lat = _time_loop(runners[t.label], python_seconds or seconds)
                t.latencies_ms.append(statistics.median(lat))
            last = (f"{t.latency_ms:8.2f} ms" if t.latencies_ms else "") + (
                f" {t.throughputs_fps[-1]:8.1f} FPS" if t.throughputs_fps else "")
            print(f"  round {r + 1}/{rounds} {t.label:50s} {last}", flush=True)


def ratios(targets: list[Target]) -> dict[str, dict[str, float | None]]:
    """Speed-ups against the plain FP32 baseline at the device default (latency: base/own; throughput:
    own/base) and against plain FP32 with the f32 hint; falls back to the first FP32 IR without a baseline. A
    target run under an imposed ISA is compared with the baseline run under the same ISA."""
    def pick(precision: str, isa: str) -> Target | None:
        same = [t for t in targets if t.isa == isa]
        return next((t for t in same if t.role == "plain" and t.precision == precision), None) or next(
            (t for t in same if t.backend == "openvino" and t.precision == precision), None)
    out = {}
    for t in targets:
        base, base_f32 = pick("default", t.isa), pick("f32", t.isa)
        lat, fps = t.latency_ms, t.throughput_fps
        fps_bn = t.throughput_bn_fps
        out[t.label] = {
            "vs_plain_latency": base.latency_ms / lat if base and base.latency_ms and lat else None,
            "vs_plain_throughput": fps / base.throughput_fps if base and base.throughput_fps and fps and
            t.backend == "openvino" else None,
            "vs_plain_throughput_bn": fps_bn / base.throughput_bn_fps if base and base.throughput_bn_fps and fps_bn
            else None,
            "latency_best_ms": min(t.latencies_ms) if t.latencies_ms else None,
            "throughput_bn_best_fps": max(t.throughputs_bn_fps) if t.throughputs_bn_fps else None,
            "vs_plain_f32": base_f32.latency_ms / lat if base_f32 and base_f32.latency_ms and lat else None,
            "gmacs_per_s": t.macs / (lat * 1e6) if lat else None,
        }
    return out


# ---------------------------------------------------------------- the speed section against benchmark_app
SPEED_CHECK_TOLERANCE = 0.10  # the report's ratios within ±10% of benchmark_app's


def check_speed(folder: Path, rounds: int, seconds: float, budget: float, device: str = "CPU") -> dict[str, Any]:
    """The report's speed section (compress.speed.measure_speed with a `budget` of seconds, as compress.quantize
    runs it) and benchmark_app (`rounds` interleaved rounds of `seconds` per run) on the same IRs, in one run:
    latency and batch-N throughput ratios against plain FP32 from each (benchmark_app's: the median over rounds of
    each round's ratio), and their ratio. The section is timed in the middle of the benchmark_app rounds, so drift
    of the machine falls on both."""
    rep = read_report(folder / "report.json")
    m = rep.model
    int8 = getattr(rep, "int8", rep)  # a pruning report holds its INT8 job's
    batch = int8.speed.batch if int8 is not None and int8.speed is not None else 8
    with tempfile.TemporaryDirectory() as scratch:
        plain = plain_ir(m.variant, m.checkpoint, m.input_size, Path(scratch))
        irs = {BASELINE: plain, "deploy FP32": folder / "model_fp32.xml", "INT8": folder / "model_int8.xml"}
        missing = [str(p) for p in irs.values() if not Path(p).is_file()]
        if missing:
            raise InputError(f"{folder}: no {', '.join(missing)} (a compress.quantize or prune --quantize output)")
        app: dict[str, dict[str, list[float]]] = {label: {"latency": [], "fps_bn": []} for label in irs}
        section = None
        for r in range(rounds):
            # the runs a ratio pairs are adjacent in time (every IR's latency, then every IR's batch-N throughput,
            # in alternating order): on a VM whose speed flips every few seconds, a pair 12-24 s apart (each IR's
            # latency and throughput in turn) moved one round's INT8 latency ratio from 1.01x to 1.55x
            order = list(irs) if r % 2 == 0 else list(irs)[::-1]
            for label in order:
                lat, _ = run_benchmark_app(benchmark_app_cmd(str(irs[label]), m.input_size, seconds, "latency",
                                                             None, device))
                app[label]["latency"].append(lat["median_ms"])
            for label in order[::-1]:
                thr, _ = run_benchmark_app(benchmark_app_cmd(str(irs[label]), m.input_size, seconds, "throughput",
                                                             None, device, batch))
                app[label]["fps_bn"].append(thr["throughput_fps"])
            print(f"  benchmark_app round {r + 1}/{rounds}: " + ", ".join(
                f"{label} {app[label]['latency'][-1]:.2f} ms {app[label]['fps_bn'][-1]:.1f} FPS b{batch}"
                for label in irs), flush=True)
            if r == (rounds - 1) // 2:  # in the middle of the rounds: drift of the machine falls on both alike
                section = measure_speed(irs, m.input_size, batch=batch, seconds=budget, device=device)
                print(f"  report's speed section ({budget:g} s budget) done", flush=True)
    assert section is not None
    rows = []
    for label in irs:
        if label == BASELINE:
            continue
        q = section.ratios(label)
        base, own = app[BASELINE], app[label]
        lat = [b / o for b, o in zip(base["latency"], own["latency"], strict=True)]
        bn = [o / b for b, o in zip(base["fps_bn"], own["fps_bn"], strict=True)]
        a_lat, a_bn = statistics.median(lat), statistics.median(bn)
        rows.append({"model": label, "section_latency_x": q["latency"], "app_latency_x": a_lat,
                     "latency_ratio_of_ratios": q["latency"] / a_lat, "section_fps_bn_x": q["fps_bn"],
                     "app_fps_bn_x": a_bn, "fps_bn_ratio_of_ratios": q["fps_bn"] / a_bn,
                     "section_spread": {k: q[f"{k}_spread"] for k in ("latency", "fps_bn")},
                     # benchmark_app against itself: its odd rounds' ratio over its even rounds' (None: 1 round).
                     # The check cannot resolve agreement finer than the reference agrees with itself.
                     "app_self": {k: (statistics.median(v[0::2]) / statistics.median(v[1::2]) if len(v) > 1 else None)
                                  for k, v in (("latency", lat), ("fps_bn", bn))}})
    return {"folder": str(folder), "isa": os.environ.get(ISA_ENV) or own_isa(), "batch": batch, "budget_s": budget,
            "app_seconds": seconds, "rounds": rounds, "window_s": section.window_s, "rows": rows,
            "within": all(abs(r[k] - 1) <= SPEED_CHECK_TOLERANCE for r in rows
                          for k in ("latency_ratio_of_ratios", "fps_bn_ratio_of_ratios"))}


def speed_check_text(res: dict[str, Any]) -> str:
    b = res["batch"]
    rows = [[r["model"], f"{r['section_latency_x']:.2f}x", f"{r['app_latency_x']:.2f}x",
             f"**{r['latency_ratio_of_ratios']:.3f}**", f"{r['section_fps_bn_x']:.2f}x", f"{r['app_fps_bn_x']:.2f}x",
             f"**{r['fps_bn_ratio_of_ratios']:.3f}**"] for r in res["rows"]]
    verdict = "within" if res["within"] else "NOT within"
    return "\n".join([
        f"Speed section against benchmark_app, {res['folder']} ({res['isa']}; section budget {res['budget_s']:g} s, "
        f"{res['window_s']:.2f} s windows; benchmark_app {res['rounds']} rounds of {res['app_seconds']:g} s):", "",
        md_table(["model", "latency x (section)", "latency x (benchmark_app)", "ratio of ratios",
                  f"b{b} FPS x (section)", f"b{b} FPS x (benchmark_app)", "ratio of ratios"], rows), "",
        f"Ratios against plain FP32: the section is {verdict} ±{SPEED_CHECK_TOLERANCE:.0%} of benchmark_app.",
        "benchmark_app against itself in this run (odd rounds over even rounds; the finest agreement it can "
        "resolve): " + "; ".join(
            f"{r['model']} latency {fmt_self(r['app_self']['latency'])}, b{b} FPS {fmt_self(r['app_self']['fps_bn'])}"
            for r in res["rows"] if "app_self" in r) + "."])


def fmt_self(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def write_outputs(targets: list[Target], rat: dict, mach: dict, args: argparse.Namespace, out: Path,
                  argv: list[str]) -> str:
    rows = []
    for t in targets:
        r = rat[t.label]
        rows.append([t.label, t.backend, t.precision, f"{t.macs / 1e6:.0f}",
                     f"{t.latency_ms:.2f}" if t.latency_ms else "–",
                     f"{r['latency_best_ms']:.2f}" if r["latency_best_ms"] else "–",
                     f"{t.throughput_fps:.0f}" if t.throughput_fps else "–",
                     f"{t.throughput_bn_fps:.0f} (best {r['throughput_bn_best_fps']:.0f})" if t.throughput_bn_fps
                     else "–",
                     f"{r['vs_plain_latency']:.2f}x" if r["vs_plain_latency"] else "–",
                     f"{r['vs_plain_throughput']:.2f}x" if r["vs_plain_throughput"] else "–",
                     f"{r['vs_plain_throughput_bn']:.2f}x" if r["vs_plain_throughput_bn"] else "–",
                     f"{r['vs_plain_f32']:.2f}x" if r["vs_plain_f32"] else "–",
                     f"{r['gmacs_per_s']:.1f}" if r["gmacs_per_s"] else "–",
                     t.runtime.executed if t.runtime else "–", t.runtime.reorders if t.runtime else "–"])
    header = ["model", "backend", "precision", "MMACs", "latency median ms", "latency best ms", "FPS b1",
              f"FPS b{args.batch}", "latency vs plain", "FPS b1 vs plain", f"FPS b{args.batch} vs plain",
              "latency vs plain f32", "GMAC/s", "executed nodes", "Reorders"]
    fps_note = "throughput hint" if args.hint != "latency" else "latency hint"
    peak = mach.get("int8_peak_gmacs_estimate")
    text = "\n".join([
        f"# CloFormer benchmark ({datetime.now():%Y-%m-%d %H:%M})", "",
        f"`{' '.join(['python -m tools.benchmark', *argv])}`", "",
        f"Machine: {mach.get('cpu')}, {mach.get('cores')} cores; flags: "
        + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in mach.get("flags", {}).items()), "",
        f"benchmark_app -d {args.device} -hint {args.hint} -t {args.t}, batch 1 (and -shape [{args.batch},3,S,S] "
        f"under the throughput hint for FPS b{args.batch}, images/s), static shape; median of "
        f"{args.rounds} alternating rounds (best of rounds where shown); FPS under the {fps_note}. "
        f"Baseline: {BASELINE} = "
        "`ov.convert_model(torch_model, example_input)` at the device's default precision. INT8 peak estimate: "
        f"{peak if peak else 'n/a'} GMAC/s ({VNNI_MACS_PER_CYCLE} int8 MAC/cycle/core assumed).", "",
        *([f"Rows marked `@ISA` ran under `ONEDNN_MAX_CPU_ISA=ISA` ({', '.join(args.isa)}), each against the "
           f"{BASELINE} baseline run under the same ISA, beside this CPU's own ({own_isa()}). {IMPOSED_NOTE}", ""]
          if args.isa else []),
        md_table(header, rows),
        "", "## Executed nodes (runtime graph, each IR at its precision)", "",
        f"ISA: {next((t.runtime.isa for t in targets if t.runtime), 'n/a')}. Deterministic for one OpenVINO version "
        "and ISA.", "", runtime_table([t.runtime for t in targets if t.runtime]), ""])
    if any(t.perf_by_type for t in targets):
        text += "\n".join([
            "", "## Time per op type (benchmark_app average performance counters)", "",
            "ms summed over the nodes of each type (node count); the exec precision is the kernel that ran. "
            "One separate run per IR after the timed rounds, so totals differ from the medians above.", "",
            perf_table(targets), ""])
    (out / "benchmark.md").write_text(text)
    data = {"command": ["python -m tools.benchmark", *argv], "machine": mach, "versions": versions(),
            "hint": args.hint, "seconds": args.t, "rounds": args.rounds, "batch": args.batch, "baseline": BASELINE,
            "targets": [{**asdict(t), "latency_ms": t.latency_ms, "throughput_fps": t.throughput_fps,
                         "throughput_bn_fps": t.throughput_bn_fps, **rat[t.label]}
                        for t in targets]}
    (out / "benchmark.json").write_text(json.dumps(data, indent=2) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [t for t in targets if t.latency_ms]
    if shown:
        fig, ax = plt.subplots(figsize=(9, 0.4 * len(shown) + 1.5))
        colors = {"openvino": "#2980b9", "torch": "#e67e22", "onnxruntime": "#8e44ad", "numpy": "#7f8c8d"}
        ax.barh([t.label for t in shown], [t.latency_ms for t in shown], color=[colors[t.backend] for t in shown])
        for i, t in enumerate(shown):
            r = rat[t.label]["vs_plain_latency"]
            ax.text(t.latency_ms, i, f" {t.latency_ms:.2f} ms" + (f" ({r:.2f}x)" if r else ""), va="center",
                    fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(f"latency median (ms), batch 1; (x) = speed-up vs {BASELINE} at default precision")
        ax.set_title(f"CloFormer on {mach.get('cpu')}", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / "benchmark.png", dpi=110)
        plt.close(fig)
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path, help="output folders of compress.quantize / compress.prune")
    ap.add_argument("-t", type=int, default=10, help="whole seconds per benchmark_app run (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hint", choices=["latency", "throughput", "both"], default="both")
    ap.add_argument("--batch", type=int, default=8,
                    help="also FPS at this batch under the throughput hint (-shape [N,3,S,S]); 1: batch 1 only")
    ap.add_argument("-d", "--device", default="CPU")
    ap.add_argument("--python-seconds", type=float, default=None, help="timing window of torch/ORT/NumPy runs")
    ap.add_argument("--no-python", action="store_true", help="skip torch, ONNX Runtime and NumPy")
    ap.add_argument("--no-numpy", action="store_true", help="skip the NumPy reference")
    ap.add_argument("--no-baseline", action="store_true", help=f"skip the {BASELINE} baseline")
    ap.add_argument("--pc", action="store_true",
                    help="also tabulate benchmark_app performance counters per op type for every IR")
    ap.add_argument("--isa", type=lambda v: [s.strip().upper() for s in v.split(",")], default=[],
                    metavar="ISA[,ISA...]",
                    help="also run every IR under these oneDNN ISAs (ONEDNN_MAX_CPU_ISA), e.g. AVX2,AVX512_CORE_VNNI, "
                         f"beside this CPU's own; this CPU allows {', '.join(isa_levels()) or 'none'}. " + IMPOSED_NOTE)
    ap.add_argument("--out", type=Path, default=None, help="default: outputs/benchmark-<time>")
    ap.add_argument("--check-speed", action="store_true",
                    help="instead: time one report's IRs with its own speed section and with benchmark_app (-t, "
                         "--rounds) in one run, and print the ratio of their ratios against plain FP32; impose an "
                         f"ISA by exporting {ISA_ENV}")
    ap.add_argument("--budget", type=float, default=None,
                    help="--check-speed: the speed section's budget in seconds (default: compress.quantize's)")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    if args.check_speed:
        from compress.settings import DEFAULT_RUN

        if len(args.folders) != 1:
            ap.error("--check-speed takes one output folder")
        try:
            res = check_speed(args.folders[0], args.rounds, args.t, args.budget or DEFAULT_RUN.benchmark_seconds,
                              args.device)
        except InputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(speed_check_text(res))
        print(json.dumps(res))
        return 0
    try:
        args.isa = isa.resolve(",".join(args.isa)) if args.isa else []
    except InputError as e:
        ap.error(str(e).replace("isa_matrix", "--isa"))
    out = args.out or Path("outputs") / f"benchmark-{datetime.now():%Y%m%d-%H%M%S}"
    try:
        for folder in args.folders:  # the output replaces an existing --out: never one that holds the IRs
            check_apart(out, {"folder": folder})
        with staging_dir(out, force=True) as tmp:
            base_dir = tmp / "baseline"
            base_dir.mkdir()
            targets = discover(args.folders, not args.no_python, not args.no_numpy,
                               None if args.no_baseline else base_dir)
            targets += imposed(targets, args.isa)
            for t in targets:
                if t.backend == "openvino" and not t.isa:  # (an imposed ISA needs a process of its own)
                    t.runtime = runtime_graph(t.path, t.label, args.device, "f32" if t.precision == "f32" else None,
                                              compiles=3)
            measure(targets, args.rounds, args.t, args.hint, args.device, tmp, args.python_seconds, args.batch)
            if args.pc:
                for t in targets:
                    if t.backend == "openvino":
                        print(f"  performance counters {t.label}", flush=True)
                        t.perf_by_type = perf_counters(t, args.t, "latency" if args.hint == "both" else args.hint,
                                                       args.device)
            text = write_outputs(targets, ratios(targets), machine(), args, tmp, argv)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(text)
    print(f"wrote {out}/benchmark.md, benchmark.json, benchmark.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
