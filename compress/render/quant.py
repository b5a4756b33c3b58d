"""The INT8 report: report.md, its plots, and the printed summary."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from ..plots import plot_advice, plot_layers, plot_loss, plot_speed
from ..report import (
    Int8Comparison,
    QuantReport,
    write_report,
)
from ..targets import GRAPH_AGREEMENT, GRAPH_SQNR, INT8_AGREEMENT, INT8_DROP, INT8_SQNR
from .tables import checks_table, deploy_line, deploy_section, fmt, md_table, runtime_table, speed_section, verdict


def write_quant_outputs(report: QuantReport, folder: Path, stem: str = "report") -> None:
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
             checks_table(report.fp32_checks),
             "", f"## INT8 vs FP32 on {c.source} ({c.n} images)", "",
             md_table(["model", "top-1 %", "top-5 %"], [["FP32 deploy IR (f32)", c.fp32_top1, c.fp32_top5],
                                                        ["INT8 IR", c.int8_top1, c.int8_top5]]), "",
             md_table(["metric", f"default precision ({report.default_precision})", "f32 hint", "target"],
                      [["top-1 drop (pt)", fmt(c.top1_drop), fmt(cf.top1_drop), f"≤ {report.bound(INT8_DROP)}"],
                       ["top-1 agreement with FP32 (%)", f"{c.top1_agreement:.2f} ({c.disagreements} of {c.n} "
                        f"differ; 95% CI {c.agreement_ci95[0]:.2f}-{c.agreement_ci95[1]:.2f})",
                        f"{cf.top1_agreement:.2f}", f"≥ {report.bound(INT8_AGREEMENT)}"],
                       ["logit cosine", f"{c.cosine:.5f}", f"{cf.cosine:.5f}", "–"],
                       ["logit SQNR (dB)", fmt(c.sqnr_db, ".1f"), fmt(cf.sqnr_db, ".1f"),
                        f"≥ {report.bound(INT8_SQNR)}"]]),
             "", "INT8 is evaluated at the device's default precision, as deployed (the non-quantized ops run in "
             f"{report.default_precision} here); the f32-hint column isolates the quantizers' own error."
             + (f" {floor_sentence(report.fp32_deployed_vs_f32, report.default_precision)}."
                if report.fp32_deployed_vs_f32 is not None else ""), ""]
    if report.undertrained_teacher:
        lines += [f"**Warning:** {report.undertrained_teacher}.", ""]
    if report.accuracy_control is not None:
        a = report.accuracy_control
        lines += ["## Accuracy control", "",
                  f"NNCF reverted quantizers until the top-1 drop on the tuning part ({a.tuning.name}, {a.tuning.n} "
                  f"images) was ≤ {a.max_drop_pt} pt: there it is {fmt(a.tuning_drop_pt)} pt (optimistic: tuned on). "
                  f"On the held-out part above: **{fmt(a.heldout_drop_pt)} pt**.", ""]
    lines += qat_section(report)
    if report.int8_runtime_vs_graph:
        g0, graph_db = report.int8_runtime_vs_graph[0], report.bound(GRAPH_SQNR)
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
                  "", f"Targets (f32 hint): SQNR ≥ {graph_db} dB, agreement ≥ {report.bound(GRAPH_AGREEMENT)}%. "
                  f"Layers below {graph_db} dB (f32 hint): "
                  + (", ".join(f"{n} ({v:.1f})" for n, v in g0.layers if v < graph_db) or "none")
                  + ".", ""]
    lines += advice_section(report)
    lines += isa_section(report) + targets_section(report)
    if report.speed is not None:
        lines += speed_section(report.speed)
    if report.runtime:
        lines += ["## Executed nodes (OpenVINO runtime graph, default precision)", "",
                  f"ISA: {report.runtime[0].isa}; OpenVINO {report.runtime[0].openvino}.", "",
                  runtime_table(report.runtime), ""]
    alpha = report.settings.equalise_alpha
    lines += [f"FakeQuantize nodes: {report.quantizers}. Ignored scope: "
              f"{', '.join(str(e) for e in report.settings.ignored_scope) or 'none'}."
              + (f" The inputs of fc2, proj and the gates' first FC equalised at alpha {alpha:g} before NNCF, folded "
                 "into the weights around them (compress.int8.equalise)." if alpha is not None else ""), "",
              *(f"Note: NNCF {n}." for n in report.notes), *([""] if report.notes else []),
              "## Per-layer SQNR against the NumPy reference (worst first)", "",
              md_table(["layer", "INT8 dB", "FP32 IR dB"],
                       [[d.name, d.int8_db, d.fp32_db] for d in sorted(report.per_layer_sqnr,
                                                                       key=lambda d: d.int8_db)[:12]]),
              "", "![per-layer SQNR](per_layer_sqnr.png)", "", "## Files and times", "",
              md_table(["file", "bytes"], [[k, f"{v:,}"] for k, v in report.file_bytes.items()]), "",
              md_table(["stage", "seconds"], [[k, v] for k, v in report.seconds.items()]), "",
              *deploy_section(report.deploy)]
    (folder / f"{stem}.md").write_text("\n".join(lines), errors="backslashreplace")
    plot_layers(report.per_layer_sqnr, folder / "per_layer_sqnr.png",
                f"{m.variant} INT8 per-layer SQNR ({c.source})")
    if report.speed is not None:
        plot_speed(report.speed, folder / "speed.png", f"{m.variant} at {m.input_size}x{m.input_size}")
    if report.advice is not None:
        plot_advice(report.advice.sensitivity, folder / "advice.png", f"{m.variant} INT8: each quantizer group alone")
    if report.qat is not None and report.qat.losses:
        plot_loss(report.qat.losses, folder / "qat_loss.png", f"{m.variant} QAT matching loss (log scale)")
    write_report(report, folder / f"{stem}.json")


def qat_rows(report: QuantReport) -> list[list[Any]]:
    """PTQ and QAT side by side (the same settings, calibration and validation data, one job)."""
    q = report.qat
    runtime = {g.label: g for g in report.runtime}
    rows = []
    for name, c, cf, fq, g in (
            ("PTQ (model_int8_ptq.xml)", q.ptq_vs_fp32, q.ptq_f32_hint_vs_fp32, q.ptq_quantizers, q.ptq_runtime),
            ("QAT (model_int8.xml)", report.int8_vs_fp32, report.int8_f32_hint_vs_fp32, report.quantizers,
             runtime.get("INT8 IR"))):
        rows.append([name, f"{c.top1_agreement:.2f} ({c.disagreements} differ)", f"{c.sqnr_db:.1f}",
                     fmt(c.top1_drop), f"{cf.top1_agreement:.2f}", f"{cf.sqnr_db:.1f}", fq,
                     f"{g.executed} ({g.reorders} Reorders)" if g else "–"])
    return rows


def qat_section(report: QuantReport) -> list[str]:
    q = report.qat
    if q is None:
        return []
    c = report.int8_vs_fp32
    first, last = (sum(q.losses[:10]) / len(q.losses[:10]), sum(q.losses[-10:]) / len(q.losses[-10:])) \
        if q.losses else (None, None)
    return ["## Quantization-aware training against PTQ (same settings, one job)", "",
            md_table(["INT8 IR", f"agreement % ({report.default_precision})", "SQNR dB", "top-1 drop pt",
                      "agreement % (f32)", "SQNR dB (f32)", "FakeQuantize", "executed nodes (Reorders)"],
                     qat_rows(report)), "",
            f"On {c.source} ({c.n} images) against the FP32 deploy IR. QAT: {q.steps} steps of {q.batch} images at "
            f"lr {q.lr:g} on {q.data.name} ({q.data.n} images, disjoint from validation), {q.seconds:.0f} s of "
            f"fine-tuning; matching loss (noise-to-signal power of the logits and the taps against FP32) "
            f"{fmt(first, '.5f')} (first 10 steps) -> {fmt(last, '.5f')} (last 10), on one fixed "
            f"unaugmented batch {q.probe_loss[0]:.5f} -> {q.probe_loss[1]:.5f}; "
            f"training moved {q.ranges_changed} of {q.ranges} quantizer ranges (largest change "
            f"{100 * q.max_range_change:.1f}%).", "", "![QAT loss](qat_loss.png)", ""]


def short_kernels(kernels: dict[str, int], n: int = 3) -> str:
    """The most used kernel names, e.g. 'jit_avx2_1x1_I8 x89, jit_avx2_I8 x37, ...'."""
    top = sorted(kernels.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} x{v}" for k, v in top[:n]) + (", ..." if len(top) > n else "")


def isa_section(report: QuantReport) -> list[str]:
    """report.md: the INT8 IR on each instruction set, and what each computes."""
    rows = report.isa_matrix
    if not rows:
        return []
    c = rows[0].vs_fp32
    table = md_table(
        ["ISA", "int8 sums", "default precision", "vs graph SQNR dB (f32 hint / default)", "vs graph agreement %",
         "vs FP32 agreement %", "vs FP32 SQNR dB", "top-1 drop (pt)", "kernels (primitiveType)"],
        [[r.label, "int16, saturating" if r.saturating else "int32 (VNNI/AMX)", r.default_precision,
          f"{r.vs_graph.sqnr_db:.1f} / {r.vs_graph_default.sqnr_db:.1f}",
          f"{r.vs_graph.top1_agreement:.2f} ({r.vs_graph.disagreements} differ)",
          f"{r.vs_fp32.top1_agreement:.2f} ({r.vs_fp32.disagreements} differ)", f"{r.vs_fp32.sqnr_db:.1f}",
          fmt(r.vs_fp32.top1_drop), short_kernels(r.kernels)
          + ("" if r.kernels_as_imposed else " (**a newer ISA's kernels ran: not imposed**)")] for r in rows])
    return ["## INT8 on each instruction set", "",
            "The same model_int8.xml run by OpenVINO's CPU plugin in one process per ISA (oneDNN's "
            "`ONEDNN_MAX_CPU_ISA`), as a CPU of that ISA would run it: against the NumPy run of the IR on "
            f"{rows[0].vs_graph.n} images, and at that ISA's default precision against FP32 on {c.source} ({c.n} "
            "images). Without VNNI (AVX2, plain AVX-512) int8 products are summed pairwise in int16 with saturation; "
            f"this IR was quantized with `--overflow-fix {report.settings.overflow_fix}`. An imposed ISA shows that "
            "ISA's kernels and numerics, not an older CPU's speed.", "", table, ""]


def targets_section(report: QuantReport) -> list[str]:
    """report.md: every stated target, judged where it was measured."""
    if not report.targets:
        return []
    missed = report.missed()
    head = (f"All {len(report.targets)} targets met." if not missed else
            f"**{len(missed)} of {len(report.targets)} targets missed.**")
    rows = [[t.scope, t.metric, fmt(t.value), t.bound_text, f"**{t.state}**" if t.met is False else t.state,
             t.cause or ""] for t in report.targets]
    return ["## Targets", "", head + " Reported, not enforced: the exit status is the checks'.", "",
            md_table(["where", "target", "value", "bound", "", "likely cause"], rows), ""]


def isa_target_lines(report: QuantReport) -> list[str]:
    """The summary's lines for the ISA matrix (one a row) and the targets (every missed one, with its cause)."""
    lines = []
    for r in report.isa_matrix:
        lines.append(f"  ISA {r.label}: vs graph {r.vs_graph.sqnr_db:.1f} dB, {r.vs_graph.top1_agreement:.2f}%; "
                     f"vs FP32 {r.vs_fp32.top1_agreement:.2f}% ({r.vs_fp32.disagreements} differ), "
                     f"{r.vs_fp32.sqnr_db:.1f} dB ({r.default_precision}); kernels {short_kernels(r.kernels, 2)}"
                     + ("" if r.kernels_as_imposed else " (NOT IMPOSED: a newer ISA's kernels ran)"))
    missed = report.missed()
    lines.append(f"  INT8 targets: all {len(report.targets)} met" if not missed else
                 f"  INT8 targets: {len(missed)} of {len(report.targets)} NOT MET (reported, not enforced):")
    return lines + [f"    {t} - {t.cause}" for t in missed]


def floor_sentence(f: Int8Comparison, precision: str) -> str:
    """The FP32 IR at the default precision against its f32 run: no quantizer, only the float ops' rounding."""
    return (f"FP32 IR itself at {precision} against f32 (no quantizer: INT8's floor at {precision}): agreement "
            f"{f.top1_agreement:.2f}% ({f.disagreements}/{f.n} differ), SQNR {f.sqnr_db:.1f} dB")


def quant_summary(report: QuantReport, out: Path) -> str:
    c = report.int8_vs_fp32
    lines = [f"\n{'stage':58s} {'value':>10s} {'tol':>8s}  pass"]
    lines += [f"{ch.stage:58s} {ch.value:10.2e} {fmt(ch.tolerance, '.0e'):>8s}  {fmt(ch.passed)}"
              for ch in report.fp32_checks]
    lines += [f"\nINT8 vs FP32 on {c.source} ({c.n} images; {report.data_rule}):",
              f"  top-1  FP32 {fmt(c.fp32_top1)}%  INT8 {fmt(c.int8_top1)}%  drop {fmt(c.top1_drop)} pt "
              f"(target ≤ {report.bound(INT8_DROP)})",
              f"  top-1 agreement {c.top1_agreement:.2f}% ({c.disagreements}/{c.n} differ, 95% CI "
              f"{c.agreement_ci95[0]:.2f}-{c.agreement_ci95[1]:.2f}; target ≥ {report.bound(INT8_AGREEMENT)}), "
              f"cosine {c.cosine:.5f}, SQNR {c.sqnr_db:.1f} dB (default precision {report.default_precision})"]
    if (f := report.fp32_deployed_vs_f32) is not None:
        lines.append(f"  {floor_sentence(f, report.default_precision)}")
    if report.undertrained_teacher:
        lines.append(f"  warning: {report.undertrained_teacher}")
    if report.qat is not None:
        lines.append("  QAT against PTQ of the same settings: " + "; ".join(
            f"{r[0].split()[0]} agreement {r[1]}%, SQNR {r[2]} dB" for r in qat_rows(report))
            + f" ({report.qat.seconds:.0f} s of fine-tuning)")
    if report.accuracy_control is not None:
        a = report.accuracy_control
        lines.append(f"  accuracy control: drop {fmt(a.tuning_drop_pt)} pt on the tuning part, "
                     f"{fmt(a.heldout_drop_pt)} pt held out")
    if report.speed is not None:
        lines += [f"  speed: {verdict(report.speed, label)}" for label in [r.label for r in report.speed.rows][1:]]
        lines += [f"  {p.ir}: {p.verdict}" for p in report.speed.profiles[-1:]]
    if report.runtime:
        lines.append("  executed nodes: " + ", ".join(f"{g.label} {g.executed} ({g.reorders} Reorders)"
                                                      for g in report.runtime))
    for g in report.int8_runtime_vs_graph:
        lines.append(f"  OpenVINO {g.device} ({g.precision}) vs NumPy run of model_int8.xml, {g.n} images: logit SQNR "
                     f"{g.sqnr_db:.1f} dB, top-1 agreement {g.top1_agreement:.2f}%, worst layer {g.worst_layer}")
    lines += isa_target_lines(report)
    if (line := advice_line(report)) is not None:
        lines.append(line)
    lines += [f"  FakeQuantize nodes {report.quantizers}; worst layers: {', '.join(report.worst_layers[:3])}",
              f"  total {report.seconds.get('total', 0):.1f} s; wrote {out}/ (model_fp32.xml, model_int8.xml, "
              + ("model_int8_ptq.xml, " if report.qat is not None else "")
              + "model_fp32.onnx, report.json, report.md, per_layer_sqnr.png"
              + (", speed.png" if report.speed is not None else "")
              + (", qat_loss.png" if report.qat is not None and report.qat.losses else "") + ")",
              f"  benchmark: benchmark_app -m {shlex.quote(str(out / 'model_int8.xml'))} -d CPU -hint latency",
              f"  {deploy_line(report.deploy)}"]
    return "\n".join(lines)


def advice_section(report: QuantReport) -> list[str]:
    """What --advise measured and kept; without it, what it would try."""
    a = report.advice
    if a is None:
        return ["## Per-layer advice", "", "`--advise` would try, each judged on data this report does not evaluate "
                "on, the best kept: " + "; ".join(report.advice_plan) + ".", ""] if report.advice_plan else []
    b = a.baseline
    return ["## Per-layer advice (`--advise`)", "",
            f"Judged on {a.data} at the f32 hint, against the FP32 IR; {a.seconds:.0f} s of a {a.budget_s:.0f} s "
            f"budget. Settings as given: logit SQNR {fmt(b.sqnr_db)} dB, agreement {fmt(b.agreement)}%, "
            f"{b.executed} executed nodes.", "",
            "Sensitivity, ranked by the logit SQNR with the group alone in float (what a float fallback recovers); "
            "beside it, the SQNR with the group alone quantized (what it costs alone). All groups: "
            "![advice](advice.png)", "",
            md_table(["quantizer group", "FakeQuantize", "alone in float (dB)", "alone quantized (dB)"],
                     [[x.group, x.quantizers, f"{x.float_only_db:.2f}", f"{x.quantized_only_db:.2f}"]
                      for x in a.sensitivity[:10]]), "",
            md_table(["fix", "options", "SQNR dB", "agreement %", "executed nodes", "seconds", "verdict"],
                     [[c.name, f"`{c.command}`", fmt(c.sqnr_db), fmt(c.agreement), fmt(c.executed), fmt(c.seconds),
                       c.verdict] for c in a.candidates]), "",
            f"Kept: **{a.chosen}**. Reproduce without searching: `{a.command}`", ""]


def advice_line(report: QuantReport) -> str | None:
    a = report.advice
    if a is None:
        return None
    kept = next((c for c in a.candidates if c.name == a.chosen), None)
    what = (f"kept {a.chosen} ({kept.verdict} on {a.data})" if kept else
            f"no fix beat the settings as given on {a.data}")
    return f"  advice: {what}; reproduce: {a.command}"
