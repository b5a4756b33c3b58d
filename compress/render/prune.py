"""The pruning report: report.md, its plot, and the fast model's lines."""

from __future__ import annotations

from pathlib import Path

from ..metrics import Paired, student_ahead_within_noise
from ..plots import plot_pruning, plot_speed
from ..report import (
    PruneAccuracy,
    PruneReport,
    write_report,
)
from ..targets import FAST_DROP
from .tables import bound, checks_table, deploy_section, fmt, md_table, speed_section


def write_prune_outputs(rep: PruneReport, folder: Path) -> None:
    a, m = rep.accuracy, rep.macs
    size = rep.model.input_size
    lines = [f"# CloFormer pruning report: {rep.title}"
             + (f", kept widths rounded to {rep.round_to}" if rep.round_to else ""), "", f"`{rep.command}`", "",
             f"Fine-tuned at {rep.finetune_size or size} px; exported, evaluated and timed at {size}x{size}.", "",
             md_table(["", "before", "after", "change"], [
                 ["MACs (M)", f"{m.before / 1e6:.1f}", f"{m.after / 1e6:.1f}", f"−{m.reduction_pct:.1f}%"],
                 ["params", f"{rep.params.before:,}", f"{rep.params.after:,}",
                  f"nonzero {rep.params.nonzero_after:,}"],
                 [f"top-1 on {a.source} (%)", a.unpruned_top1, a.pruned_top1, fmt(a.top1_drop)],
                 [f"top-5 on {a.source} (%)", a.unpruned_top5, a.pruned_top5, "–"],
                 ["FP32 .bin bytes (gzip)", "–", f"{rep.sizes['model_fp32.bin']:,} "
                  f"({rep.sizes['model_fp32.bin.gz']:,})", "–"]]), "",
             f"Pruned IR top-1: {fmt(a.pruned_ir_top1)}%. {paired_sentence(a)}NumPy float64 vs torch on the pruned "
             "checkpoint: "
             f"max |Δlogit| {rep.numpy_float64_agreement.value:.1e} "
             f"(tolerance {rep.numpy_float64_agreement.tolerance:g}).", ""]
    if rep.undertrained_teacher:
        lines += [f"**Warning:** {rep.undertrained_teacher}.", ""]
    if rep.checks:  # (with INT8, the twins are report_int8.md's)
        lines += ["## FP32 agreement (twins)", "", checks_table(rep.checks), ""]
    if rep.nncf_pruning_statistic is not None:
        s = rep.nncf_pruning_statistic
        lines += [f"NNCF pruning statistic: prunable-parameter sparsity {s['pruning_ratio']:.3f}, all parameters "
                  f"{s['global_pruning_ratio']:.3f}.", ""]
    if rep.dropped_blocks:
        lines += ["## Blocks removed whole", "", "Chosen greedily, each by the distillation loss against the unpruned "
                  "model with it bypassed on top of those chosen before (compress.prune.depth), in this order:", "",
                  md_table(["block", "loss when chosen"], [[b, f"{v:.4f}"] for b, v in rep.block_losses.items()]),
                  ""]
    lines += ["## Kept channels per block (kept / original)", "",
              md_table(["block", "FFN hidden", "local channels", "global heads"],
                       [[r["block"] + (" (removed)" if r.get("removed") else ""), f"{r['hidden'][0]}/{r['hidden'][1]}",
                         f"{r['local'][0]}/{r['local'][1]}", f"{r['global_heads'][0]}/{r['global_heads'][1]}"]
                        for r in rep.layers]), "",
              "![kept channels](pruning.png)", "", md_table(["stage", "seconds"],
                                                             [[k, v] for k, v in rep.seconds.items()]), ""]
    if rep.int8 is not None:
        c = rep.int8.int8_vs_fp32
        lines += ["## Pruned INT8", "", f"top-1 FP32 {fmt(c.fp32_top1)}%, INT8 {fmt(c.int8_top1)}%, "
                  f"agreement {c.top1_agreement:.2f}%, SQNR {c.sqnr_db:.1f} dB (details: report_int8.md)", ""]
    if rep.targets is not None:
        lines += ["## The fast model against its targets", "", "Pruned INT8 against the unpruned checkpoint, measured "
                  "in this run (the speed section: report_int8.md, speed.png).", "",
                  *[f"- {t}" for t in fast_lines(rep)], ""]
    if rep.speed is not None:  # (with INT8, the speed section is report_int8.md's)
        lines += speed_section(rep.speed)
        plot_speed(rep.speed, folder / "speed.png", f"{rep.model.variant} at {size}x{size}")
    lines += deploy_section(rep.deploy)
    (folder / "report.md").write_text("\n".join(lines), errors="backslashreplace")
    write_report(rep, folder / "report.json")
    plot_pruning(rep, folder / "pruning.png")


def fast_lines(rep: PruneReport, markdown: bool = True) -> list[str]:
    """The fast model (pruned INT8) against the unpruned checkpoint, target by target, in words."""
    targets = rep.targets or []
    lines = [f"{t.metric}, {t.scope}: {fmt(t.value)} ({t.bound_text}): "
             + (f"**{t.state}**" if markdown and t.met is False else t.state) for t in targets]
    sp = rep.timings
    if sp is None:
        lines.append("speed not measured (--benchmark-seconds 0)")
    elif any(t.met is False for t in targets if t.id != FAST_DROP.id):  # a speed target
        counters = bound(sp, sp.rows[-1].label, "pruned deploy FP32") or "no counters were read"
        lines.append(f"what bounds it on this CPU ({sp.isa_short}, {sp.cores} cores): {counters}")
    return lines


def paired_sentence(a: PruneAccuracy) -> str:
    """The top-1 change image by image: what the drop rests on, and whether these images resolve it."""
    if a.lost is None or a.gained is None or a.paired_p is None:
        return ""
    verdict = "resolved" if a.paired_p < 0.05 else "not resolved by these images"
    ahead = student_ahead_within_noise(Paired(a.n, a.lost, a.gained), "pruned model")
    return (f"Image by image, the pruned model loses {a.lost} and gains {a.gained} of the unpruned model's "
            f"classifications on the same {a.n} images (exact McNemar p {a.paired_p:.2f}: the change is {verdict}). "
            + (f"{ahead[0].upper()}{ahead[1:]}. " if ahead else ""))
