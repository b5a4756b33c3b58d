"""Where an INT8 IR's error comes from: its weights, its activations, and each activation quantizer.

    python -m tools.int8_budget outputs/RUN [--data proxy-val] [--limit 256] [--per-quantizer 20] [--json F]

Runs the run's INT8 IR three ways against its FP32 IR, OpenVINO at the f32 hint (only the quantizers' error) on
held-out images: as it is; with every activation FakeQuantize bypassed (the weights' error alone); with every
weight the float weight it was quantized from (the activations' error alone: what no change to the weights, their
bits or the overflow fix, can bring the logits above). With --per-quantizer K, each activation FakeQuantize is then
bypassed alone and the K whose bypass helps most are listed: where the error is spread over many quantizers, no
single fallback or range change moves the logits far.

The float weights are those of model_fp32.xml, or, for a run with --equalise-alpha, the checkpoint's weights folded
again on the run's own calibration images (checked against the report's digest of them). Every INT8 weight must be
a rounding of its float weight (within half a quantization step), or the tool says which layer is not.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from compress import export as E
from compress.data import Images
from compress.data.sources import resolve_source
from compress.errors import InputError
from compress.int8 import steps
from compress.int8.advise import WEIGHTED, bypass
from compress.int8.qat import BIAS_ADD
from compress.loading import load
from compress.metrics import sqnr_db
from compress.report import QuantReport, read_report
from compress.runtime import compile_ov, run_ov


@dataclass
class Row:
    label: str
    sqnr_db: float
    bypassed: int  # FakeQuantize bypassed, or weights restored to float


@dataclass
class Budget:
    run: str
    data: str
    n: int
    rows: list[Row]
    quantizers: list[Row]  # each activation FakeQuantize bypassed alone, most helpful first


def logits(model: Any, x: np.ndarray) -> np.ndarray:
    """At the f32 hint (the quantizers' error alone), image by image as the report measures."""
    return run_ov(compile_ov(model), x)[0]


def is_weight_fq(op: Any) -> bool:
    return op.get_type_name() == "FakeQuantize" and op.input_value(0).get_node().get_type_name() == "Constant"


def activation_fqs(model: Any) -> list[Any]:
    return [op for op in model.get_ordered_ops() if op.get_type_name() == "FakeQuantize" and not is_weight_fq(op)]


def dequantized(op: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(weight, step) of a compressed INT8 weight input, Multiply(Convert(Constant int8), scale); None for a float
    weight."""
    mul = op.input_value(1).get_node()
    if mul.get_type_name() != "Multiply":
        return None
    conv, scale = (mul.input_value(i).get_node() for i in range(2))
    if conv.get_type_name() != "Convert" or scale.get_type_name() != "Constant":
        return None
    q = conv.input_value(0).get_node()
    if q.get_type_name() != "Constant":
        return None
    step = scale.get_data().astype(np.float64)
    return q.get_data().astype(np.float64) * step, np.broadcast_to(step, q.get_data().shape)


def bias_port(op: Any) -> int | None:
    """The port of the Constant of a convolution's or linear layer's bias Add (named as qat.BIAS_ADD), else None."""
    if op.get_type_name() != "Add" or not BIAS_ADD.fullmatch(op.get_friendly_name()):
        return None
    ports = [i for i in range(2) if op.input_value(i).get_node().get_type_name() == "Constant"]
    return ports[0] if len(ports) == 1 else None


def float_weights_of(model: Any) -> dict[str, np.ndarray]:
    """Weights by the name of the node that reads them, and biases by the name of their Add."""
    out = {}
    for op in model.get_ordered_ops():
        port = 1 if op.get_type_name() in WEIGHTED else bias_port(op)
        src = op.input_value(port).get_node() if port is not None else None
        if src is not None and src.get_type_name() == "Constant":
            out[op.get_friendly_name()] = src.get_data()
    return out


def float_weights(run: Path, report: QuantReport) -> dict[str, np.ndarray]:
    """The float weights the INT8 IR's were quantized from, by the name of the node that reads them."""
    import openvino as ov

    if report.settings.equalise_alpha is None:
        return float_weights_of(ov.Core().read_model(str(run / "model_fp32.xml")))
    m = report.model
    loaded = load(m.variant, m.pruned_checkpoint or m.checkpoint, m.input_size)
    settings = report.settings
    calibration = steps.calibrate(resolve_source(report.calibration.name, m.input_size), settings, report.seed)
    if calibration.part.sha256_of_items != report.calibration.sha256_of_items:
        raise InputError(f"{run}: the calibration images of {report.calibration.name} are no longer the ones the run "
                         "used (their digest differs), so its equalisation cannot be folded again")
    exported = E.Exported(None, run / "model_fp32.xml", None, [])
    return float_weights_of(steps.quantize_source(exported, calibration.arrays, settings, loaded))


def with_float_weights(model: Any, weights: dict[str, np.ndarray]) -> int:
    """Every compressed weight replaced by its float weight (checked to round to it); returns how many."""
    import openvino.opset13 as ops

    n = 0
    for op in model.get_ordered_ops():
        deq = dequantized(op) if op.get_type_name() in WEIGHTED else None
        if deq is None:
            continue
        name = op.get_friendly_name()
        w = weights.get(name)
        if w is None or w.shape != deq[0].shape:
            raise InputError(f"{name}: no float weight of shape {deq[0].shape} in the FP32 graph")
        # the rounding error is at most half a step (a weight quantizer's range covers its weights: no clipping)
        if np.any(np.abs(w - deq[0]) > 0.5001 * deq[1] + 1e-7):
            raise InputError(f"{name}: the INT8 weight is not a rounding of the float weight (an IR of other "
                             "weights, or settings the report does not record)")
        op.input(1).replace_source_output(ops.constant(w.astype(np.float32)).output(0))
        n += 1
    return n


def with_float_biases(model: Any, weights: dict[str, np.ndarray]) -> int:
    """Every bias the bias correction changed set back to the float graph's; returns how many."""
    import openvino.opset13 as ops

    n = 0
    for op in model.get_ordered_ops():
        port = bias_port(op)
        b = weights.get(op.get_friendly_name()) if port is not None else None
        if b is None or b.shape != tuple(op.input_value(port).get_shape()):
            continue
        op.input(port).replace_source_output(ops.constant(b.astype(np.float32)).output(0))
        n += 1
    return n


def budget(run: Path, data: str = "proxy-val", limit: int | None = 256, per_quantizer: int = 0) -> Budget:
    import openvino as ov

    report = read_report(run)
    if not isinstance(report, QuantReport):
        raise InputError(f"{run}: not an INT8 run's folder (its report.json is a pruning report)")
    size = report.model.input_size
    images = Images.of(resolve_source(data, size, limit))
    x = np.asarray(images.xs)
    int8 = ov.Core().read_model(str(run / "model_int8.xml"))  # read once; each variant is a copy
    ref = logits(str(run / "model_fp32.xml"), x)

    rows = [Row("INT8 as it is", sqnr_db(logits(int8, x), ref), 0)]
    weights_only = int8.clone()
    fqs = activation_fqs(weights_only)
    for op in fqs:
        bypass(op)
    rows.append(Row("weights alone (activation quantizers bypassed)", sqnr_db(logits(weights_only, x), ref), len(fqs)))
    floats = float_weights(run, report)
    acts_only = int8.clone()
    n = with_float_weights(acts_only, floats)
    rows.append(Row("activations alone (float weights, corrected biases)", sqnr_db(logits(acts_only, x), ref), n))
    n += with_float_biases(acts_only, floats)
    rows.append(Row("activations alone (float weights and biases)", sqnr_db(logits(acts_only, x), ref), n))

    singles = []
    names = [op.get_friendly_name() for op in fqs] if per_quantizer else []
    for name in tqdm(names, desc="each activation quantizer bypassed", unit="FQ"):
        m = int8.clone()
        (op,) = [o for o in activation_fqs(m) if o.get_friendly_name() == name]
        bypass(op)
        singles.append(Row(name, sqnr_db(logits(m, x), ref), 1))
    singles.sort(key=lambda r: -r.sqnr_db)
    return Budget(str(run), images.name, len(x), rows, singles[:per_quantizer])


def render(b: Budget) -> str:
    lines = [f"{b.run}: logit SQNR against the FP32 IR, OpenVINO f32 hint, {b.n} images of {b.data}", "",
             "| INT8 IR | logit SQNR (dB) | bypassed or restored |", "|---|---|---|"]
    lines += [f"| {r.label} | {r.sqnr_db:.2f} | {r.bypassed} |" for r in b.rows]
    if b.quantizers:
        lines += ["", "| activation quantizer bypassed alone | logit SQNR (dB) |", "|---|---|"]
        lines += [f"| {r.label} | {r.sqnr_db:.2f} |" for r in b.quantizers]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="an INT8 run's folder (model_int8.xml, model_fp32.xml, report.json)")
    ap.add_argument("--data", default="proxy-val", help="held-out images (default: proxy-val)")
    ap.add_argument("--limit", type=int, default=256, help="images (default: 256)")
    ap.add_argument("--per-quantizer", type=int, default=0, metavar="K",
                    help="bypass each activation quantizer alone and list the K that help most (default: 0, off)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    for name in ("report.json", "model_int8.xml", "model_fp32.xml"):
        if not (args.run / name).is_file():
            print(f"int8_budget: {args.run / name} not found (pass an INT8 run's folder)", file=sys.stderr)
            return 2
    try:
        b = budget(args.run, args.data, args.limit, args.per_quantizer)
    except InputError as e:
        print(f"int8_budget: {e}", file=sys.stderr)
        return 2
    print(render(b))
    if args.json:
        args.json.write_text(json.dumps(asdict(b), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
