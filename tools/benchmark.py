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
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from compress import isa
from compress.atomic import check_apart, staging_dir
from compress.errors import InputError
from compress.render import md_table, runtime_table
from compress.report import versions
from compress.runtime import (
    BF16_LEVELS,
    ISA_ENV,
    NODE_COMPILES,
    cpu_isa,
    cpu_model,
    isa_levels,
    own_isa,
    runtime_graph,
)
from compress.runtime import ISA_FLAGS as FLAGS
from compress.speed import BASELINE
from tools.bench_targets import Target, discover, perf_counters, perf_table, python_runner, time_loop
from tools.benchmark_app import benchmark_app_cmd, run_benchmark_app, run_length
from tools.speed_check import check_speed, speed_check_text

IMPOSED_NOTE = ("An imposed ISA shows that ISA's kernels and numerics on this CPU, not an older CPU's clocks, "
                "caches or memory: read its ratios, not its milliseconds, as what a CPU of that ISA would gain.")


VNNI_MACS_PER_CYCLE = 128  # int8 MACs/cycle/core: two 512-bit VPDPBUSD per cycle (an assumption; see README)


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
            python_seconds: float | None = None, batch: int = 1, niter: int | None = None) -> None:
    """Alternating rounds over every target (and every hint of `hint`, and the throughput hint at batch `batch`
    when > 1): medians resist drift and noise."""
    runners: dict[str, Any] = {}
    runs = [(h, 1) for h in hints_of(hint)] + ([("throughput", batch)] if batch > 1 and hint != "latency" else [])
    for r in range(rounds):
        order = targets if r % 2 == 0 else list(reversed(targets))
        for t in order:
            if t.backend == "openvino":
                for h, n in runs:
                    cmd = benchmark_app_cmd(t.path, t.input_size, seconds, h, t.app_precision(), device, n, niter)
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
                lat = time_loop(runners[t.label], python_seconds or seconds)
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
        f"benchmark_app -d {args.device} -hint {args.hint} {' '.join(run_length(args.t, args.niter))}, batch 1 "
        f"(and -shape [{args.batch},3,S,S] "
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
            "hint": args.hint, "seconds": None if args.niter else args.t, "niter": args.niter, "rounds": args.rounds,
            "batch": args.batch, "baseline": BASELINE,
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
    length = ap.add_mutually_exclusive_group()
    length.add_argument("-t", type=int, default=10, help="whole seconds per benchmark_app run (default %(default)s)")
    length.add_argument("-niter", type=int, default=None, metavar="N",
                        help="instead of -t: N inferences per benchmark_app run (as benchmark_app's -niter)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hint", choices=["latency", "throughput", "both"], default="both")
    ap.add_argument("--batch", type=int, default=8,
                    help="also FPS at this batch under the throughput hint (-shape [N,3,S,S]); 1: batch 1 only")
    ap.add_argument("-d", "--device", default="CPU")
    ap.add_argument("--input-size", type=int, default=None,
                    help="time every model at this side, a multiple of 32 (default: each folder's own)")
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
                    help="instead: time one report's IRs with its own speed section and with benchmark_app (-t or "
                         "-niter, --rounds) in one run, and print the ratio of their ratios against plain FP32; impose "
                         f"an ISA by exporting {ISA_ENV}")
    ap.add_argument("--budget", type=float, default=None,
                    help="--check-speed: the speed section's budget in seconds (default: compress.quantize's)")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    if args.niter is not None and args.niter < 1:
        ap.error("-niter must be >= 1")
    if args.input_size is not None and (args.input_size < 32 or args.input_size % 32):
        ap.error(f"--input-size {args.input_size}: expected a multiple of 32")
    if args.check_speed:
        from compress.settings import DEFAULT_RUN

        if len(args.folders) != 1:
            ap.error("--check-speed takes one output folder")
        try:
            res = check_speed(args.folders[0], args.rounds, args.t, args.budget or DEFAULT_RUN.benchmark_seconds,
                              args.device, args.niter)
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
                               None if args.no_baseline else base_dir, args.input_size)
            targets += imposed(targets, args.isa)
            for t in targets:
                if t.backend == "openvino" and not t.isa:  # (an imposed ISA needs a process of its own)
                    t.runtime = runtime_graph(t.path, t.label, args.device, "f32" if t.precision == "f32" else None,
                                              compiles=NODE_COMPILES)
            measure(targets, args.rounds, args.t, args.hint, args.device, tmp, args.python_seconds, args.batch,
                    args.niter)
            if args.pc:
                for t in targets:
                    if t.backend == "openvino":
                        print(f"  performance counters {t.label}", flush=True)
                        t.perf_by_type = perf_counters(t, args.t, "latency" if args.hint == "both" else args.hint,
                                                       args.device, args.niter)
            text = write_outputs(targets, ratios(targets), machine(), args, tmp, argv)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(text)
    print(f"wrote {out}/benchmark.md, benchmark.json, benchmark.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
