"""tools.benchmark --check-speed: a report's speed section against benchmark_app on the same IRs, in one run."""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from compress.errors import InputError
from compress.render import md_table
from compress.report import read_report
from compress.runtime import (
    ISA_ENV,
    own_isa,
)
from compress.speed import BASELINE, measure_speed
from tools.bench_targets import plain_ir
from tools.benchmark_app import benchmark_app_cmd, run_benchmark_app

# ---------------------------------------------------------------- the speed section against benchmark_app
SPEED_CHECK_TOLERANCE = 0.10  # the report's ratios within ±10% of benchmark_app's


def check_speed(folder: Path, rounds: int, seconds: float, budget: float, device: str = "CPU",
                niter: int | None = None) -> dict[str, Any]:
    """The report's speed section (compress.speed.measure_speed with a `budget` of seconds, as compress.quantize
    runs it) and benchmark_app (`rounds` interleaved rounds of `seconds`, or `niter` inferences, per run) on the
    same IRs, in one run: latency and batch-N throughput ratios against plain FP32 from each (benchmark_app's: the
    median over rounds of each round's ratio), and their ratio. The section is timed in the middle of the
    benchmark_app rounds, so drift of the machine falls on both."""
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
                                                             None, device, niter=niter))
                app[label]["latency"].append(lat["median_ms"])
            for label in order[::-1]:
                thr, _ = run_benchmark_app(benchmark_app_cmd(str(irs[label]), m.input_size, seconds, "throughput",
                                                             None, device, batch, niter))
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
