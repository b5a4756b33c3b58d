"""INT8 post-training quantization of CloFormer with NNCF, exported to OpenVINO IR and verified stage by stage.

    python -m compress.quantize                                   # proxy weights, `sample` calibration
    python -m compress.quantize --calib imagenet_subset --checkpoint my_cloformer_xxs.pth --input-size 224
    python -m compress.quantize --accuracy-control --val proxy-val --max-drop 0.3

Writes into --out (built under a temporary name, renamed when complete): model_fp32.xml/.bin (the deploy
graph, static shape, FP32 weights), model_int8.xml/.bin, model_fp32.onnx (training form), report.json,
report.md, per_layer_sqnr.png. Calibration and validation never share an image: without --val the
calibration source is split into disjoint parts (the proxy checkpoint validates on its held-out proxy-val).

Exit status: 0 done; 1 an FP32 agreement check failed (outputs kept), or an internal error (traceback
printed, partial output kept as <out>.failed/); 2 bad input (one line naming it); 130 interrupted.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime
from pathlib import Path

from . import pipeline as P
from .atomic import check_target
from .cli import add_common, input_size, positive_int, run_main
from .errors import InputError
from .int8 import TARGET_MAX_TOP1_DROP_PT, quantize_model, summary
from .settings import (
    ACTIVATION_RANGES,
    DEFAULT_IGNORED_SCOPE,
    MODEL_TYPES,
    PRESETS,
    QuantSettings,
    ScopeEntry,
)
from .sources import DataParts, quant_parts, source_help


def add_quant_options(ap: argparse.ArgumentParser) -> None:
    """The INT8 options, shared with `compress.prune --quantize`."""
    d = QuantSettings()
    ap.add_argument("--calib", default="sample", help=f"calibration data: {source_help()} (default: %(default)s)")
    ap.add_argument("--subset-size", type=positive_int, default=d.subset_size,
                    help="calibration images (default 300, as NNCF)")
    ap.add_argument("--preset", choices=PRESETS, default=d.preset,
                    help="NNCF preset: mixed = asymmetric activations (default: %(default)s)")
    ap.add_argument("--model-type", choices=MODEL_TYPES, default=d.model_type or "none",
                    help="NNCF model type (transformer: fewer quantizers on element-wise ops; default: %(default)s)")
    ap.add_argument("--fast-bias-correction", action=argparse.BooleanOptionalAction, default=d.fast_bias_correction,
                    help="NNCF fast bias correction (default: on; full correction doubles the time for +0.1-0.2 pt)")
    ap.add_argument("--activation-range", choices=ACTIVATION_RANGES, default=d.activation_range,
                    help="NNCF activation range estimator: minmax = global min/max over the calibration set "
                         "(default), mean_minmax = NNCF's default, histogram = MSE-optimal (default: %(default)s)")
    ap.add_argument("--smooth-quant-alpha", type=float, default=d.smooth_quant_alpha,
                    help="SmoothQuant alpha for convolutions and MatMuls, transformer type only; -1 disables "
                         "(default: NNCF's)")
    ap.add_argument("--ignored-scope", action="append", default=None, metavar="KIND:VALUE",
                    help="keep ops in float: type:Softmax, name:<node>, pattern:<regex> (repeatable; replaces the "
                    f"default {' '.join(map(str, DEFAULT_IGNORED_SCOPE))}; 'none' quantizes everything). Every "
                    "entry must match a node")
    ap.add_argument("--accuracy-control", action="store_true",
                    help="nncf.quantize_with_accuracy_control: tunes on one half of the validation data, reports "
                         "the drop on the other half")
    ap.add_argument("--val", default=None, help="held-out data for INT8 vs FP32 (default: the checkpoint's held-out "
                    "set, proxy-val for the proxy checkpoint; else a disjoint split of --calib)")
    ap.add_argument("--val-fraction", type=float, default=0.5,
                    help="without --val: the fraction of --calib kept for validation (default: %(default)s)")
    ap.add_argument("--allow-overlap", action="store_true", help="accept a --val that shares images with --calib")
    ap.add_argument("--val-limit", type=positive_int, default=None, help="evaluate a seeded subset of --val")
    ap.add_argument("--max-drop", type=float, default=TARGET_MAX_TOP1_DROP_PT, help="top-1 points (accuracy control)")
    ap.add_argument("--device", default="CPU", help="OpenVINO device for the INT8 evaluation: CPU, NPU, GPU, AUTO")
    ap.add_argument("--seed", type=int, default=0, help="seed of the calibration/validation subsets")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m compress.quantize", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cloformer_xxs", help="variant (default: %(default)s)")
    ap.add_argument("--checkpoint", default="proxy",
                    help="checkpoint path (.pth/.safetensors/.npz) or 'proxy', the shipped weights (default)")
    ap.add_argument("--input-size", type=input_size, default=None, help="multiple of 32 (default: the checkpoint's)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: outputs/<model>-<time>)")
    ap.add_argument("--force", action="store_true", help="replace --out if it exists (the old one is kept until "
                    "the new one is complete)")
    add_quant_options(ap)
    add_common(ap)
    return ap


def settings_from_args(args: argparse.Namespace) -> QuantSettings:
    """argv -> QuantSettings; every value is validated by QuantSettings itself."""
    specs = [str(e) for e in DEFAULT_IGNORED_SCOPE] if args.ignored_scope is None else args.ignored_scope
    alpha = args.smooth_quant_alpha
    return QuantSettings(preset=args.preset, model_type=None if args.model_type == "none" else args.model_type,
                         fast_bias_correction=args.fast_bias_correction, subset_size=args.subset_size,
                         smooth_quant_alpha=alpha, activation_range=args.activation_range,
                         ignored_scope=tuple(ScopeEntry.parse(s) for s in specs if s != "none"))


def data_parts_from_args(args: argparse.Namespace, checkpoint: str, size: int) -> DataParts:
    if not 0 < args.val_fraction < 1:
        raise InputError(f"--val-fraction must be in (0, 1); got {args.val_fraction}")
    return quant_parts(args.calib, args.val, size, default_val="proxy-val" if checkpoint == "proxy" else None,
                       val_fraction=args.val_fraction, val_limit=args.val_limit,
                       accuracy_control=args.accuracy_control, allow_overlap=args.allow_overlap, seed=args.seed)


def command_line(prog: str, argv: list[str]) -> str:
    return f"python -m {prog} " + " ".join(shlex.quote(a) for a in argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)

    def go() -> int:
        # everything that can be checked is checked before the first expensive step
        settings = settings_from_args(args)
        out = args.out or Path("outputs") / f"{args.model}-{datetime.now():%Y%m%d-%H%M%S}"
        check_target(out, args.force)
        lap = P.Timer()
        loaded = P.load(args.model, args.checkpoint, args.input_size)
        parts = data_parts_from_args(args, args.checkpoint, loaded.input_size)
        lap("load")
        report = quantize_model(loaded, parts, settings, out, command=command_line("compress.quantize", argv),
                                seed=args.seed, device=args.device, max_drop=args.max_drop, force=args.force,
                                allow_overlap=args.allow_overlap, lap=lap)
        print(summary(report, out))
        failed = [ch.stage for ch in report.fp32_checks if ch.passed is False]
        if failed:
            print(f"error: FP32 agreement failed: {', '.join(failed)}", file=sys.stderr)
            return 1
        return 0
    return run_main("compress.quantize", go, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
