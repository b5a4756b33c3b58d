"""The INT8 job as a library function (compress.quantize and compress.prune --quantize are thin CLIs on it):

    report = quantize_model(loaded, parts, QuantSettings(), Path("outputs/run"), RunConfig(command="..."))

calibrate -> export (deploy graph) -> quantize -> save -> verify FP32 twins -> evaluate FP32 and INT8 ->
per-layer diagnosis -> runtime-graph accounting -> report (JSON, Markdown, plot). Nothing here sees argv.
"""

from __future__ import annotations

import logging
import shlex
import tempfile
from functools import partial
from pathlib import Path

import numpy as np

from . import pipeline as P
from .atomic import staging_dir
from .evaluate import Preloaded, evaluate_openvino
from .report import (
    AccuracyControl,
    DataPart,
    ModelInfo,
    QuantReport,
    fmt,
    md_table,
    plot_layers,
    plot_speed,
    runtime_table,
    speed_section,
    versions,
    write_report,
)
from .runtime import runtime_graph
from .settings import (
    DEFAULT_RUN,
    TARGET_MAX_TOP1_DROP_PT,
    TARGET_MIN_AGREEMENT_PCT,
    TARGET_MIN_GRAPH_AGREEMENT_PCT,
    TARGET_MIN_GRAPH_SQNR_DB,
    TARGET_MIN_SQNR_DB,
    QuantSettings,
    RunConfig,
)
from .sources import DataParts
from .speed import BASELINE, measure_speed, verdict
from .tolerances import INT8_RUNTIME_MARGIN_DB

log = logging.getLogger("compress")
N_VERIFY = 8  # images for the FP32 twin checks
N_DIAGNOSE = 32  # images for the per-layer SQNR diagnosis
N_IR_FP32 = 2  # images the NumPy IR executor runs the FP32 IRs on (float64)
N_IR_INT8 = 32  # images for OpenVINO's INT8 against the NumPy run of the same IR (a whole set: tools.check_int8_ir)
PRELOAD_BYTES = 1 << 30  # validation images are preprocessed once when they fit in this much memory


def part(src: object) -> DataPart:
    return DataPart(src.name, len(src), src.digest(), len(src.skipped))


def int8_stages(loaded: P.LoadedModel, parts: DataParts, settings: QuantSettings, folder: Path, lap: P.Timer, *,
                run: RunConfig, baseline: P.LoadedModel | None = None) -> QuantReport:
    """Every INT8 stage, writing model_fp32.*, model_int8.* into `folder`; returns the report (no files).
    Both IRs take a static batch `run.batch` input (verified image by image against batch 1); they reshape
    freely. The speed section times them against plain FP32 of `baseline` (default: `loaded` itself; the
    unpruned model when `loaded` is a pruned one)."""
    import openvino as ov

    seed, device, max_drop, batch = run.seed, run.device, run.max_drop, run.batch

    parts.validation.check_labels(loaded.num_classes)  # scoring against labels the model lacks is meaningless
    taps_model = P.convert_deploy(loaded, taps=True)
    P.check_ignored_scope(taps_model, settings)  # a scope typo stops the run before any data is read
    lap("convert deploy graph, check the ignored scope")
    calib_src = parts.calibration.subset(settings.subset_size, seed)
    calib = P.calibration_data(calib_src)  # afterwards calib_src.used lists the images actually used
    if len(calib) < settings.subset_size:
        log.warning("calibration: %d usable image(s) in %s, fewer than the %d asked for (subset_size); NNCF "
                    "calibrates on these", len(calib), calib_src.name, settings.subset_size)
    lap("calibration data")
    exported = P.export(loaded, folder, taps_model)
    lap("export FP32 (deploy IR, ONNX)")
    val = parts.validation
    preload = len(val) * 3 * loaded.input_size ** 2 * 4 <= PRELOAD_BYTES
    val_data = Preloaded.of(val) if preload else val
    ac = None
    if parts.tuning is not None:
        tuning = Preloaded.of(parts.tuning)
        int8_taps = P.quantize_with_accuracy_control(exported.taps_model, calib,
                                                     [(x[None], int(y)) for x, y in tuning], settings,
                                                     max_drop)
    else:
        int8_taps = P.quantize(exported.taps_model, calib, settings)
    lap("quantize (nncf)")
    ov.save_model(P.single_output(int8_taps), str(folder / "model_int8.xml"), compress_to_fp16=False)
    lap("save INT8 IR")
    verify_x = val_data.xs[:N_VERIFY] if preload else np.stack([x for x, _ in val.subset(N_VERIFY, seed)])
    checks = P.verify_fp32(loaded, exported, verify_x)
    with tempfile.TemporaryDirectory() as scratch:
        checks += P.numpy_ir_checks(loaded, exported, verify_x[:N_IR_FP32], Path(scratch))
    lap("verify FP32 twins (torch, ONNX Runtime, OpenVINO, NumPy IR executor)")
    fp32 = evaluate_openvino(exported.fp32_xml, val_data, "CPU", "f32", backend="FP32 IR (f32)")
    # INT8 as it ships: the device's default precision (BF16 for the non-quantized ops on BF16 CPUs) ...
    int8 = evaluate_openvino(folder / "model_int8.xml", val_data, device, None, backend=f"INT8 IR ({device})")
    cmp = P.compare_int8(fp32.logits, int8.logits, fp32.labels, val.name)
    # ... and with f32 for the non-quantized ops, which isolates the quantizers' own error
    int8_f32 = evaluate_openvino(folder / "model_int8.xml", val_data, "CPU", "f32", backend="INT8 (f32)")
    cmp_f32 = P.compare_int8(fp32.logits, int8_f32.logits, fp32.labels, val.name)
    if parts.tuning is not None:
        fp32_t = evaluate_openvino(exported.fp32_xml, tuning, "CPU", "f32", backend="FP32 (tuning part)")
        int8_t = evaluate_openvino(folder / "model_int8.xml", tuning, device, None, backend="INT8 (tuning part)")
        ac = AccuracyControl(max_drop, part(parts.tuning),
                             fp32_t.top1 - int8_t.top1, cmp.top1_drop)
    lap("evaluate FP32 and INT8")
    diag_x = val_data.xs[-N_DIAGNOSE:] if preload else np.stack([x for x, _ in val.subset(N_DIAGNOSE, seed + 1)])
    layers = P.diagnose(loaded, exported, int8_taps, diag_x)
    lap("per-layer diagnosis")
    graph_x = diag_x[:N_IR_INT8]
    configs = [("CPU", "f32"), ("CPU", None)] + ([(device, None)] if device.upper() != "CPU" else [])
    with tempfile.TemporaryDirectory() as scratch:
        graph = P.graph_run(folder / "model_int8.xml", int8_taps, exported.tap_names, graph_x, Path(scratch))
    vs_graph = [P.runtime_vs_graph(graph, folder / "model_int8.xml", int8_taps, dev, prec) for dev, prec in configs]
    lap("INT8 runtime vs NumPy IR executor")
    graphs = ([runtime_graph(exported.fp32_xml, "FP32 deploy IR", device),
               runtime_graph(folder / "model_int8.xml", "INT8 IR", device)] if device.upper() == "CPU" else [])
    lap("runtime graph")
    speed = None
    if run.benchmark_seconds > 0:
        pruned = baseline is not None and baseline is not loaded
        speed = measure_speed({BASELINE: partial(P.convert_plain, baseline or loaded),
                               f"{'pruned ' if pruned else ''}deploy FP32": exported.fp32_xml,
                               f"{'pruned ' if pruned else ''}INT8": folder / "model_int8.xml"},
                              loaded.input_size, batch=run.benchmark_batch, seconds=run.benchmark_seconds,
                              device=device)
        lap("speed (plain FP32, deploy FP32, INT8)")
    if batch > 1:  # last: every stage above runs the batch-1 IRs
        checks += [P.set_batch(exported.fp32_xml, batch, verify_x),
                   P.set_batch(folder / "model_int8.xml", batch, graph_x, graph.f32_sqnr_db - INT8_RUNTIME_MARGIN_DB)]
        lap(f"static batch {batch}")
    drop = cmp.top1_drop
    return QuantReport(
        command=run.command, seed=seed, versions=versions(),
        model=ModelInfo(loaded.variant, loaded.checkpoint, loaded.input_size, loaded.num_classes, device, batch=batch),
        settings=settings, data_rule=parts.rule, calibration=part(calib_src),
        calibration_items=calib_src.manifest()["items"], validation=part(val), allow_overlap=run.allow_overlap,
        quantizers=P.count_fake_quantize(int8_taps), fp32_checks=checks, int8_vs_fp32=cmp,
        int8_f32_hint_vs_fp32=cmp_f32, default_precision=P.default_precision(device),
        per_layer_sqnr=layers, worst_layers=[w.name for w in sorted(layers, key=lambda d: d.int8_db)[:5]],
        targets={"max_top1_drop_pt": TARGET_MAX_TOP1_DROP_PT, "min_agreement_pct": TARGET_MIN_AGREEMENT_PCT,
                 "min_sqnr_db": TARGET_MIN_SQNR_DB,
                 "top1_drop_met": None if drop is None else drop <= TARGET_MAX_TOP1_DROP_PT,
                 "agreement_met": cmp.top1_agreement >= TARGET_MIN_AGREEMENT_PCT,
                 "sqnr_met": cmp.sqnr_db >= TARGET_MIN_SQNR_DB},
        runtime=graphs, int8_runtime_vs_graph=vs_graph, accuracy_control=ac, speed=speed)


def finish(report: QuantReport, times: dict[str, float], folder: Path) -> None:
    """Stage times and the folder's file sizes, once every artifact is written."""
    report.seconds = {**times, "total": round(sum(times.values()), 2)}
    report.file_bytes = {p.name: p.stat().st_size for p in sorted(folder.iterdir())
                         if p.is_file() and not p.name.startswith(".")}


def write_outputs(report: QuantReport, folder: Path, stem: str = "report") -> None:
    """<stem>.md, <stem>.json and per_layer_sqnr.png."""
    c, cf, m = report.int8_vs_fp32, report.int8_f32_hint_vs_fp32, report.model
    lines = [f"# CloFormer INT8 report: {m.variant} ({m.checkpoint}), {m.input_size}x{m.input_size}",
             "", f"The IRs take a static input [{m.batch},3,{m.input_size},{m.input_size}] and reshape to any batch "
             "and any input size that is a multiple of 32 (`model.reshape`, `benchmark_app -shape`).",
             "", f"`{report.command}`", "",
             f"Data: calibration {report.calibration.name} ({report.calibration.n} images, sha256 of items "
             f"`{report.calibration.sha256_of_items[:12]}`); validation {report.validation.name} "
             f"({report.validation.n} images, `{report.validation.sha256_of_items[:12]}`). {report.data_rule}.", "",
             "## FP32 agreement (twins)", "",
             md_table(["stage", "metric", "value", "tolerance", "pass"],
                      [[ch.stage, ch.metric, f"{ch.value:.2e}", fmt(ch.tolerance, ".0e"), fmt(ch.passed)]
                       for ch in report.fp32_checks]),
             "", f"## INT8 vs FP32 on {c.source} ({c.n} images)", "",
             md_table(["model", "top-1 %", "top-5 %"], [["FP32 deploy IR (f32)", c.fp32_top1, c.fp32_top5],
                                                        ["INT8 IR", c.int8_top1, c.int8_top5]]), "",
             md_table(["metric", f"default precision ({report.default_precision})", "f32 hint", "target"],
                      [["top-1 drop (pt)", fmt(c.top1_drop), fmt(cf.top1_drop), f"≤ {TARGET_MAX_TOP1_DROP_PT}"],
                       ["top-1 agreement with FP32 (%)", f"{c.top1_agreement:.2f} ({c.disagreements} of {c.n} "
                        f"differ; 95% CI {c.agreement_ci95[0]:.2f}-{c.agreement_ci95[1]:.2f})",
                        f"{cf.top1_agreement:.2f}", f"≥ {TARGET_MIN_AGREEMENT_PCT}"],
                       ["logit cosine", f"{c.cosine:.5f}", f"{cf.cosine:.5f}", "–"],
                       ["logit SQNR (dB)", fmt(c.sqnr_db, ".1f"), fmt(cf.sqnr_db, ".1f"), f"≥ {TARGET_MIN_SQNR_DB}"]]),
             "", "INT8 is evaluated at the device's default precision, as deployed (the non-quantized ops run in "
             f"{report.default_precision} here); the f32-hint column isolates the quantizers' own error.", ""]
    if report.accuracy_control is not None:
        a = report.accuracy_control
        lines += ["## Accuracy control", "",
                  f"NNCF reverted quantizers until the top-1 drop on the tuning part ({a.tuning.name}, {a.tuning.n} "
                  f"images) was ≤ {a.max_drop_pt} pt: there it is {fmt(a.tuning_drop_pt)} pt (optimistic: tuned on). "
                  f"On the held-out part above: **{fmt(a.heldout_drop_pt)} pt**.", ""]
    if report.int8_runtime_vs_graph:
        g0 = report.int8_runtime_vs_graph[0]
        lines += ["## INT8: OpenVINO against the graph's own semantics (NumPy IR executor)", "",
                  f"model_int8.xml run by `reference_np.ir` (float64, FakeQuantize as the spec defines it) against "
                  f"OpenVINO on the same {g0.n} images: how far the runtime's int8 kernels depart from the graph, "
                  "separately from the quantization error above.", "",
                  md_table(["device", "precision", "logit max |d|", "logit SQNR dB", "top-1 agreement %",
                            "worst layer (SQNR dB)"],
                           [[g.device, g.precision, f"{g.max_abs:.3g}", f"{g.sqnr_db:.1f}",
                             f"{g.top1_agreement:.2f} ({g.disagreements} differ)",
                             f"{g.worst_layer} ({min(v for _, v in g.layers):.1f})" if g.layers else "–"]
                            for g in report.int8_runtime_vs_graph]),
                  "", f"Targets (f32 hint): SQNR ≥ {TARGET_MIN_GRAPH_SQNR_DB} dB, agreement ≥ "
                  f"{TARGET_MIN_GRAPH_AGREEMENT_PCT}%. Layers below {TARGET_MIN_GRAPH_SQNR_DB} dB (f32 hint): "
                  + (", ".join(f"{n} ({v:.1f})" for n, v in g0.layers if v < TARGET_MIN_GRAPH_SQNR_DB) or "none")
                  + ".", ""]
    if report.speed is not None:
        lines += speed_section(report.speed)
    if report.runtime:
        lines += ["## Executed nodes (OpenVINO runtime graph, default precision)", "",
                  f"ISA: {report.runtime[0].isa}; OpenVINO {report.runtime[0].openvino}.", "",
                  runtime_table(report.runtime), ""]
    lines += [f"FakeQuantize nodes: {report.quantizers}. Ignored scope: "
              f"{', '.join(str(e) for e in report.settings.ignored_scope) or 'none'}.", "",
              "## Per-layer SQNR against the NumPy reference (worst first)", "",
              md_table(["layer", "INT8 dB", "FP32 IR dB"],
                       [[d.name, d.int8_db, d.fp32_db] for d in sorted(report.per_layer_sqnr,
                                                                       key=lambda d: d.int8_db)[:12]]),
              "", "![per-layer SQNR](per_layer_sqnr.png)", "", "## Files and times", "",
              md_table(["file", "bytes"], [[k, f"{v:,}"] for k, v in report.file_bytes.items()]), "",
              md_table(["stage", "seconds"], [[k, v] for k, v in report.seconds.items()]), ""]
    (folder / f"{stem}.md").write_text("\n".join(lines), errors="backslashreplace")
    plot_layers(report.per_layer_sqnr, folder / "per_layer_sqnr.png",
                f"{m.variant} INT8 per-layer SQNR ({c.source})")
    if report.speed is not None:
        plot_speed(report.speed, folder / "speed.png", f"{m.variant} at {m.input_size}x{m.input_size}")
    write_report(report, folder / f"{stem}.json")


def quantize_model(loaded: P.LoadedModel, parts: DataParts, settings: QuantSettings, out: Path,
                   run: RunConfig = DEFAULT_RUN, lap: P.Timer | None = None) -> QuantReport:
    """Quantize `loaded` to INT8 into the folder `out` (built under a temporary name, renamed when complete)."""
    lap = lap or P.Timer()
    with staging_dir(out, run.force, P.output_bytes(loaded)) as tmp:
        report = int8_stages(loaded, parts, settings, tmp, lap, run=run)
        finish(report, lap.times, tmp)  # the model files' sizes; the report files follow
        write_outputs(report, tmp)
    return report


def summary(report: QuantReport, out: Path) -> str:
    c = report.int8_vs_fp32
    lines = [f"\n{'stage':58s} {'value':>10s} {'tol':>8s}  pass"]
    lines += [f"{ch.stage:58s} {ch.value:10.2e} {fmt(ch.tolerance, '.0e'):>8s}  {fmt(ch.passed)}"
              for ch in report.fp32_checks]
    lines += [f"\nINT8 vs FP32 on {c.source} ({c.n} images; {report.data_rule}):",
              f"  top-1  FP32 {fmt(c.fp32_top1)}%  INT8 {fmt(c.int8_top1)}%  drop {fmt(c.top1_drop)} pt "
              f"(target ≤ {TARGET_MAX_TOP1_DROP_PT})",
              f"  top-1 agreement {c.top1_agreement:.2f}% ({c.disagreements}/{c.n} differ, 95% CI "
              f"{c.agreement_ci95[0]:.2f}-{c.agreement_ci95[1]:.2f}; target ≥ {TARGET_MIN_AGREEMENT_PCT}), "
              f"cosine {c.cosine:.5f}, SQNR {c.sqnr_db:.1f} dB (default precision {report.default_precision})"]
    if report.accuracy_control is not None:
        a = report.accuracy_control
        lines.append(f"  accuracy control: drop {fmt(a.tuning_drop_pt)} pt on the tuning part, "
                     f"{fmt(a.heldout_drop_pt)} pt held out")
    if report.speed is not None:
        lines += [f"  speed: {verdict(report.speed, label)}" for label in [r.label for r in report.speed.rows][1:]]
    if report.runtime:
        lines.append("  executed nodes: " + ", ".join(f"{g.label} {g.executed} ({g.reorders} Reorders)"
                                                      for g in report.runtime))
    for g in report.int8_runtime_vs_graph:
        lines.append(f"  OpenVINO {g.device} ({g.precision}) vs NumPy run of model_int8.xml, {g.n} images: logit SQNR "
                     f"{g.sqnr_db:.1f} dB, top-1 agreement {g.top1_agreement:.2f}%, worst layer {g.worst_layer}")
    lines += [f"  FakeQuantize nodes {report.quantizers}; worst layers: {', '.join(report.worst_layers[:3])}",
              f"  total {report.seconds.get('total', 0):.1f} s; wrote {out}/ (model_fp32.xml, model_int8.xml, "
              "model_fp32.onnx, report.json, report.md, per_layer_sqnr.png"
              + (", speed.png)" if report.speed is not None else ")"),
              f"  benchmark: benchmark_app -m {shlex.quote(str(out / 'model_int8.xml'))} -d CPU -hint latency"]
    return "\n".join(lines)
