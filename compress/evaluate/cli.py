"""Top-1/top-5 and images/s of a checkpoint or an OpenVINO IR, through one code path (compress.evaluate.job).

    python -m compress.evaluate --checkpoint proxy --data proxy-val [--json out.json]
    python -m compress.evaluate --checkpoint outputs/run/model_int8.xml --data imagenet_subset --device CPU
    python -m compress.evaluate --model cloformer_xxs --checkpoint my.pth --backend numpy --data proxy-val

--model and --checkpoint mean what they mean in compress.quantize and compress.prune (the variant, and its
weights). The old spelling `--model <checkpoint or .xml> --variant <variant>` still works, with a warning.

Exit status: 0 done; 1 an internal error; 2 bad input (one line naming it); 130 interrupted; 143 terminated.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ..errors import InputError
from ..settings import BACKENDS
from .job import EvalJob, evaluate_model

log = logging.getLogger("compress")


def build_parser() -> argparse.ArgumentParser:
    from ..cli import add_common, add_exif_option, command_parser, input_size, positive_int
    from ..data.sources import source_help

    ap = command_parser("evaluate", __doc__)
    ap.add_argument("--model", default=None, help="variant of a checkpoint (default: cloformer_xxs)")
    ap.add_argument("--checkpoint", default=None,
                    help="checkpoint name ('proxy') or path (.pth/.safetensors/.npz), or an OpenVINO .xml IR")
    ap.add_argument("--variant", default=None, help=argparse.SUPPRESS)  # the old spelling of --model
    ap.add_argument("--data", default="proxy-val", help=source_help())
    ap.add_argument("--backend", choices=["auto", *BACKENDS], default="auto",
                    help="auto: openvino for .xml, torch for checkpoints; numpy runs either with the NumPy reference")
    ap.add_argument("--device", default="CPU", help="OpenVINO device for .xml models (CPU, NPU, GPU, AUTO)")
    ap.add_argument("--precision", default="f32", help="OpenVINO INFERENCE_PRECISION_HINT on CPU ('' = default)")
    ap.add_argument("--input-size", type=input_size, default=None, help="default: the model's own input size")
    ap.add_argument("--batch-size", type=positive_int, default=32)
    ap.add_argument("--limit", type=positive_int, default=None, help="evaluate a seeded subset of this many images")
    ap.add_argument("--workers", type=positive_int, default=None, help="decoding threads (default: all cores)")
    add_exif_option(ap)
    ap.add_argument("--json", type=Path, help="write {top1, top5, n, images_per_s, ...} here")
    add_common(ap)
    return ap


def model_and_checkpoint(model: str | None, checkpoint: str | None, variant: str | None) -> tuple[str, str]:
    """(variant, checkpoint) from --model/--checkpoint, accepting the old `--model X --variant V` with a warning."""
    from cloformer.registry import list_models

    old = checkpoint is None and model is not None and (variant is not None or model not in list_models())
    if old:
        log.warning("`--model %s%s` is the old spelling; write `--checkpoint %s%s` (the same words as "
                    "compress.quantize)", model, f" --variant {variant}" if variant else "", model,
                    f" --model {variant}" if variant else "")
        return variant or "cloformer_xxs", model
    if variant is not None:
        raise InputError("--variant is the old spelling of --model; give one of them")
    if checkpoint is None:
        raise InputError("--checkpoint is required (a checkpoint name or path, or an OpenVINO .xml IR)")
    return model or "cloformer_xxs", checkpoint


def main(argv: list[str] | None = None) -> int:
    from ..atomic import write_text_atomic
    from ..cli import run_main

    args = build_parser().parse_args(argv)

    def go() -> int:
        variant, checkpoint = model_and_checkpoint(args.model, args.checkpoint, args.variant)
        if args.json is not None and not args.json.parent.is_dir():
            raise InputError(f"--json {args.json}: folder {args.json.parent} does not exist")
        res = evaluate_model(EvalJob(checkpoint, args.data, variant, args.backend, args.device, args.precision or None,
                               args.input_size, args.batch_size, args.limit, args.workers, args.exif))
        acc = (f"top-1 {res.top1:.2f}%  top-5 {res.top5:.2f}%" if res.top1 is not None else "no labels: accuracy n/a")
        print(f"{checkpoint} on {res.source} ({res.n} images): {acc}  [{res.images_per_s:.1f} images/s]")
        if args.json:
            write_text_atomic(args.json, json.dumps(res.to_json(), indent=2))
        return 0
    return run_main("compress.evaluate", go, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
