"""Top-1/top-5 of any backend through one code path: torch, the NumPy reference, or an OpenVINO IR.

    python -m compress.evaluate --model proxy --data proxy-val [--json out.json]
    python -m compress.evaluate --model outputs/run/model_int8.xml --data proxy-val --device CPU
    python -m compress.evaluate --model proxy --backend numpy --data proxy-val
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .data import DataSource, resolve_source

Predict = Callable[[np.ndarray], np.ndarray]  # float32 [B,3,S,S] -> logits [B,classes]


@dataclass
class EvalResult:
    n: int
    top1: float | None  # percent; None without labels
    top5: float | None
    source: str
    backend: str
    logits: np.ndarray | None = field(default=None, repr=False)
    labels: np.ndarray | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if k not in ("logits", "labels")}


def evaluate(predict: Predict, source: DataSource, batch_size: int = 32, backend: str = "",
             progress: bool = True) -> EvalResult:
    """Run `predict` over the source; keep all logits (for agreement metrics) and the accuracy."""
    logits, labels = [], []
    bar = tqdm(total=len(source), desc=f"eval {backend} on {source.name}", unit="img", disable=not progress,
               leave=False)
    for x, y in source.batches(batch_size):
        logits.append(np.asarray(predict(x), dtype=np.float64))
        if y is not None:
            labels.append(y)
        bar.update(len(x))
    bar.close()
    if not logits:
        raise ValueError(f"data source {source.name} yielded no readable images")
    out = np.concatenate(logits)
    lab = np.concatenate(labels) if labels and len(np.concatenate(labels)) == len(out) else None
    top1 = top5 = None
    if lab is not None:
        order = np.argsort(-out, axis=1, kind="stable")
        top1 = float(100.0 * np.mean(order[:, 0] == lab))
        top5 = float(100.0 * np.mean((order[:, :5] == lab[:, None]).any(axis=1)))
    return EvalResult(len(out), top1, top5, source.name, backend, out, lab)


def torch_predictor(model) -> Predict:
    import torch

    model.eval()

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()
    return predict


def numpy_predictor(weights: dict[str, np.ndarray]) -> Predict:
    import reference_np as rn

    w32 = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in weights.items()}
    return lambda x: rn.forward(w32, x.astype(np.float32, copy=False))


def compile_ov(model: Any, device: str = "CPU", precision: str | None = "f32") -> Any:
    """Compile an IR path or ov.Model; on CPU, precision 'f32' forces true FP32 (a BF16-capable CPU would
    otherwise run FP32 IRs in BF16 silently)."""
    import openvino as ov

    cfg = {"INFERENCE_PRECISION_HINT": precision} if precision and device.upper().startswith("CPU") else {}
    return ov.Core().compile_model(str(model) if isinstance(model, (str, os.PathLike)) else model, device, cfg)


def openvino_predictor(xml: str | os.PathLike, device: str = "CPU", precision: str | None = "f32") -> Predict:
    compiled = compile_ov(xml, device, precision)
    shape = tuple(compiled.input(0).get_partial_shape().to_shape()) if compiled.input(0).get_partial_shape(
    ).is_static else None

    def predict(x: np.ndarray) -> np.ndarray:
        if shape is not None and x.shape[0] != shape[0]:  # static batch: run sample by sample
            return np.concatenate([compiled(x[i:i + shape[0]])[0] for i in range(0, len(x), shape[0])])
        return compiled(x)[0]
    return predict


def load_predictor(model: str, backend: str = "torch", variant: str = "cloformer_xxs", device: str = "CPU",
                   precision: str | None = "f32") -> tuple[Predict, int]:
    """(predict, default input size) for a checkpoint name/path or an OpenVINO .xml."""
    if str(model).endswith(".xml"):
        import openvino as ov

        shape = ov.Core().read_model(str(model)).input(0).get_partial_shape()
        size = shape[2].get_length() if shape[2].is_static else 224
        return openvino_predictor(model, device, precision), size
    import cloformer

    net = cloformer.create_model(variant, checkpoint=model, allow_pruned=True)
    size = int(net.pretrained_cfg["input_size"][-1])
    if backend == "numpy":
        return numpy_predictor({k: v.numpy() for k, v in net.state_dict().items()}), size
    return torch_predictor(net), size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="checkpoint name ('proxy'), checkpoint path, or OpenVINO .xml")
    ap.add_argument("--data", default="proxy-val", help="sample | proxy-val | imagenet_subset | folder")
    ap.add_argument("--variant", default="cloformer_xxs", help="architecture of a checkpoint")
    ap.add_argument("--backend", choices=["torch", "numpy"], default="torch", help="for checkpoints")
    ap.add_argument("--device", default="CPU", help="OpenVINO device for .xml models (CPU, NPU, AUTO, ...)")
    ap.add_argument("--precision", default="f32", help="OpenVINO INFERENCE_PRECISION_HINT on CPU ('' = default)")
    ap.add_argument("--input-size", type=int, default=None, help="default: the model's own input size")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--limit", type=int, default=None, help="evaluate a seeded subset of this many images")
    ap.add_argument("--json", type=Path, help="write {top1, top5, n, ...} here")
    args = ap.parse_args(argv)
    try:
        predict, size = load_predictor(args.model, args.backend, args.variant, args.device, args.precision or None)
        source = resolve_source(args.data, args.input_size or size, args.limit)
        res = evaluate(predict, source, args.batch_size, backend=Path(args.model).name)
    except (FileNotFoundError, NotADirectoryError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    acc = (f"top-1 {res.top1:.2f}%  top-5 {res.top5:.2f}%" if res.top1 is not None else "no labels: accuracy n/a")
    print(f"{args.model} on {res.source} ({res.n} images, {source.size}px): {acc}")
    if args.json:
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(res.to_json(), indent=2))
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
