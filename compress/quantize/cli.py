"""INT8 post-training quantization of CloFormer with NNCF, exported to OpenVINO IR and verified stage by stage.

    python -m compress.quantize                                   # proxy weights, `sample` calibration
    python -m compress.quantize --calib imagenet_subset --checkpoint my_cloformer_xxs.pth --input-size 224
    python -m compress.quantize --accuracy-control --val proxy-val --max-drop 0.3
    python -m compress.quantize --qat                             # quantization-aware training, PTQ beside it

Writes into --out (built under a temporary name, renamed when complete): model_fp32.xml/.bin (the deploy
graph, static shape, FP32 weights), model_int8.xml/.bin, model_fp32.onnx (training form), report.json,
report.md, per_layer_sqnr.png. Calibration and validation never share an image: without --val the
calibration source is split into disjoint parts (the proxy checkpoint validates on its held-out proxy-val).

Exit status: 0 done; 1 an FP32 agreement check failed (outputs kept), or an internal error (traceback
printed, partial output kept as <out>.failed/); 2 bad input (one line naming it); 130 interrupted (Ctrl-C);
143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import (
    add_common,
    add_model_options,
    add_qat_options,
    add_quant_options,
    command_parser,
    data_parts_from_args,
    exit_status,
    from_args,
    qat_from_args,
    run_config_from_args,
    run_main,
    target_and_model,
)
from ..data.sources import resolve_source
from ..render import quant_summary
from ..settings import QuantSettings
from .job import quantize_model


def build_parser() -> argparse.ArgumentParser:
    ap = command_parser("quantize", __doc__)
    add_model_options(ap, "multiple of 32 (default: the checkpoint's)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: outputs/<model>-<time>)")
    add_quant_options(ap)
    add_qat_options(ap)
    add_common(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)

    def go() -> int:
        # everything that can be checked is checked before the first expensive step
        run = run_config_from_args(args, "compress.quantize", argv)  # (starts the run's clock)
        settings = from_args(QuantSettings, args)
        qat = qat_from_args(args)
        out, loaded = target_and_model(args, args.model)
        parts = data_parts_from_args(args, args.checkpoint, loaded.transform)
        qat_data = resolve_source(args.qat_data, loaded.transform, exif=args.exif) if qat is not None else None
        report = quantize_model(loaded, parts, settings, out, run, qat, qat_data)
        print(quant_summary(report, out))
        return exit_status("compress.quantize", report, out)
    return run_main("compress.quantize", go, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
