"""Pruning CloFormer: NNCF unstructured sparsity, or structured pruning that really shrinks the network.

    python -m compress.prune --method structured --quantize --input-size 224   # the fast model, one command
    python -m compress.prune --method depth --depth 3 --quantize             # whole blocks removed
    python -m compress.prune --method structured --depth 2 --quantize        # blocks, then channels
    python -m compress.prune --method nncf-magnitude --ratio 0.5 --finetune-steps 300
    python -m compress.prune --method nncf-rb --ratio 0.5 --finetune-steps 300

Pipeline (compress.prune.job.prune_model): load -> prune -> fine-tune (knowledge distillation from the
unpruned model) -> save the pruned checkpoint (official key names) -> export the deploy IR and ONNX ->
verify (NumPy float64 agreement) -> evaluate -> [--quantize: the compress.quantize stages] -> report.
Structured pruning rounds kept channel counts to multiples of --round-to (default: the CPU's SIMD block,
16 with AVX-512, 8 with AVX2), since odd widths fall off OpenVINO's blocked kernels.

Exit status as compress.quantize: 0 done, 1 failed check or internal error, 2 bad input, 130 interrupted, 143 SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import (
    add_common,
    add_model_options,
    add_options,
    add_qat_options,
    add_quant_options,
    command_parser,
    data_parts_from_args,
    exit_status,
    from_args,
    input_size,
    qat_from_args,
    run_config_from_args,
    run_main,
    target_and_model,
)
from ..data import Preprocess
from ..data.sources import resolve_source, source_help
from ..metrics import Paired, student_ahead_within_noise
from ..render import deploy_line, fast_lines, fmt, isa_target_lines, verdict
from ..settings import PruneSettings, QuantSettings
from .job import PruneJob, prune_model


def build_parser() -> argparse.ArgumentParser:
    ap = command_parser("prune", __doc__)
    add_options(ap, PruneSettings)
    add_model_options(ap, "the IRs' input side: export, evaluation and timing (default: the checkpoint's own)")
    ap.add_argument("--data", default="proxy-train", help=f"fine-tuning images, labels used when present: "
                    f"{source_help()}")
    ap.add_argument("--finetune-size", type=input_size, default=None,
                    help="the fine-tuning images' side (default: the checkpoint's own, 64 for the proxy weights; "
                         "fine-tuning at 224 costs ~12x the time of 64)")
    ap.add_argument("--quantize", action="store_true", help="then quantize to INT8 (the compress.quantize stages)")
    ap.add_argument("--out", type=Path, default=None, help="default: outputs/<model>-pruned-<method>-<time>")
    add_quant_options(ap)
    add_qat_options(ap, data=False)  # QAT fine-tunes on --data
    add_common(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)

    def go() -> int:
        run = run_config_from_args(args, "compress.prune", argv)  # (starts the run's clock)
        settings = from_args(PruneSettings, args)
        quant_settings = from_args(QuantSettings, args) if args.quantize else None
        qat = qat_from_args(args)
        out, loaded = target_and_model(args, f"{args.model}-pruned-{args.method}")
        # fine-tuning images: the model card's transform at the fine-tuning side
        data = resolve_source(args.data, Preprocess.from_card(loaded.model.pretrained_cfg, args.finetune_size),
                              exif=args.exif)
        parts = data_parts_from_args(args, args.checkpoint, loaded.transform)
        report = prune_model(PruneJob(loaded, settings, data, parts, quant_settings, run, qat), out)
        a, m = report.accuracy, report.macs
        print(f"\n{report.title}: MACs {m.before / 1e6:.1f}M -> {m.after / 1e6:.1f}M "
              f"(−{m.reduction_pct:.1f}%), top-1 {fmt(a.unpruned_top1)}% -> {fmt(a.pruned_top1)}% "
              f"(drop {fmt(a.top1_drop)} pt) on {a.source}"
              + (f"; {a.lost} lost, {a.gained} gained image by image (exact McNemar p {a.paired_p:.2f})"
                 if a.paired_p is not None else ""))
        print(f"NumPy float64 agreement on the pruned checkpoint: max |dlogit| "
              f"{report.numpy_float64_agreement.value:.1e}")
        if report.dropped_blocks:
            print(f"blocks removed whole: {', '.join(report.dropped_blocks)}")
        if report.undertrained_teacher:
            print(f"warning: {report.undertrained_teacher}")
        elif a.paired_p is not None and (ahead := student_ahead_within_noise(Paired(a.n, a.lost, a.gained),
                                                                              "pruned model")):
            print(f"note: {ahead}")
        speed = report.timings
        if speed is not None:
            print("\n".join(f"speed: {verdict(speed, r.label)}" for r in speed.rows if r.label != speed.baseline))
        if report.int8 is not None:
            print("\n".join(line.strip() for line in isa_target_lines(report.int8)))
        if report.targets is not None:
            lines = fast_lines(report, markdown=False)
            print("fast model (pruned INT8 vs unpruned):\n" + "\n".join(f"  {t}" for t in lines))
        print(f"wrote {out}/ (pruned.safetensors, model_fp32.xml{', model_int8.xml' if report.int8 else ''}, "
              f"report.json, report.md, pruning.png{', speed.png' if speed is not None else ''})")
        print(deploy_line(report.deploy))
        return exit_status("compress.prune", report, out)
    return run_main("compress.prune", go, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
