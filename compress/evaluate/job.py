"""Evaluation, one code path for every backend: torch, the NumPy reference, or an OpenVINO IR (top-1/top-5,
images/s). OpenVINO IRs are evaluated as a deployment would run them: images decoded and preprocessed in
parallel threads, inference through an AsyncInferQueue under the THROUGHPUT hint. Torch and the NumPy
reference run batch by batch in this process. The command is compress.evaluate.cli."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from reference_np.specs import IMAGENET_MEAN, IMAGENET_STD

from ..data import DEFAULT_EXIF, DataSource, Images, Preprocess, batched, no_images
from ..errors import InputError
from ..metrics import topk_accuracy
from ..options import check_choice
from ..progress import Progress
from ..settings import BACKENDS, PRECISIONS, Backend, Precision

Predict = Callable[[np.ndarray], np.ndarray]  # float32 [B,3,S,S] -> logits [B,classes]


@dataclass
class EvalResult:
    n: int
    top1: float | None  # percent; None without labels
    top5: float | None
    source: str
    backend: str
    images_per_s: float | None = None
    skipped: int = 0
    exif: str = DEFAULT_EXIF  # how the source read EXIF orientation
    logits: np.ndarray | None = field(default=None, repr=False)
    labels: np.ndarray | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in ("n", "top1", "top5", "source", "backend", "images_per_s", "skipped",
                                                "exif")}


def _result(logits: list[np.ndarray], labels: list[int | None], source: DataSource | Images, backend: str,
            seconds: float, skipped: int) -> EvalResult:
    if not logits:
        raise no_images("data source", source.name)
    out = np.concatenate(logits).astype(np.float64)
    lab = None if any(y is None for y in labels) else np.asarray(labels)
    top1 = top5 = None
    if lab is not None:
        top1, top5 = topk_accuracy(out, lab, 1), topk_accuracy(out, lab, 5)
    return EvalResult(len(out), top1, top5, source.name, backend, len(out) / max(seconds, 1e-9),
                      skipped, source.exif, out, lab)


def evaluate(predict: Predict, source: DataSource | Images, batch_size: int = 32, backend: str = "",
             progress: bool = True) -> EvalResult:
    """Run `predict` over the source batch by batch; keep all logits (for agreement metrics)."""
    logits, labels = [], []
    t0 = time.perf_counter()
    pairs = source.decode(workers=1) if isinstance(source, DataSource) else source
    with Progress(total=len(source), desc=f"eval {backend} on {source.name}", unit="img", disable=not progress,
                  leave=False) as bar:
        for x, y in batched(pairs, batch_size):
            logits.append(np.asarray(predict(x), dtype=np.float64))
            labels += list(y) if y is not None else [None] * len(x)
            bar.update(len(x))
    return _result(logits, labels, source, backend, time.perf_counter() - t0, len(pairs.skipped))


def pad_batch(x: np.ndarray, n: int) -> np.ndarray:
    """x [k,...] with zeros appended up to n rows: the last, partial batch of a static-batch IR."""
    return x if len(x) >= n else np.concatenate([x, np.zeros((n - len(x), *x.shape[1:]), x.dtype)])


@dataclass(frozen=True)
class OVRun:
    """How compress.evaluate runs an IR: the OpenVINO device, its precision hint (None: the device's default,
    as deployed; "f32": true FP32 on a BF16-capable CPU) and the decoding threads (None: all cores)."""

    device: str = "CPU"
    precision: Precision | None = None
    workers: int | None = None
    # a streamed source is sent as uint8 NHWC crops, normalised inside the model (OpenVINO's PrePostProcessor):
    # a quarter of the bytes, and the normalisation runs in the plugin's threads instead of Python's
    pixels: bool = True

    def __post_init__(self) -> None:
        if self.precision is not None:
            check_choice(self.precision, PRECISIONS, "precision")


AS_DEPLOYED, F32 = OVRun(), OVRun(precision="f32")


def with_normalisation(model: Any, mean: tuple[float, ...] = IMAGENET_MEAN,
                       std: tuple[float, ...] = IMAGENET_STD) -> Any:
    """The model (an ov.Model or an IR path) taking uint8 NHWC crops and normalising them itself, as
    compress.data.normalize does: ((x / 255) - mean) / std, channels first."""
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    model = ov.Core().read_model(str(model)) if isinstance(model, (str, os.PathLike)) else model.clone()
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32).scale(255.0).mean(list(mean)).scale(list(std))
    return ppp.build()


def evaluate_openvino(model: Any, source: DataSource | Images, run: OVRun = AS_DEPLOYED, backend: str = "",
                      progress: bool = True) -> EvalResult:
    """An IR (path or ov.Model) over the source: parallel preprocessing, AsyncInferQueue, THROUGHPUT hint.
    An IR with a static batch N > 1 is fed N images a request (the last batch padded, its padding dropped)."""
    import openvino as ov

    from ..runtime import compile_ov

    in_memory = isinstance(source, Images)
    pixels = run.pixels and not in_memory
    if pixels:
        model = with_normalisation(model, source.transform.mean, source.transform.std)
    compiled = compile_ov(model, run.device, run.precision, PERFORMANCE_HINT="THROUGHPUT")
    dim = compiled.input(0).get_partial_shape()[0]
    per_request = dim.get_length() if dim.is_static else 1
    queue = ov.AsyncInferQueue(compiled, 0)  # 0: the plugin's optimal number of requests
    logits: dict[int, np.ndarray] = {}
    labels: list[int | None] = []
    bar = Progress(total=len(source), desc=f"eval {backend} on {source.name}", unit="img", disable=not progress,
               leave=False)

    def done(request: Any, first: tuple[int, int]) -> None:
        out = request.get_output_tensor(0).data
        for k in range(first[1]):
            logits[first[0] + k] = out[k:k + 1].copy()
        bar.update(first[1])

    def submit(xs: list[np.ndarray]) -> None:
        queue.start_async({0: pad_batch(np.stack(xs), per_request)}, userdata=(len(labels) - len(xs), len(xs)))

    queue.set_callback(done)
    t0 = time.perf_counter()
    pairs = source if in_memory else source.decode(run.workers, pixels)
    pending: list[np.ndarray] = []
    try:
        for x, y in pairs:
            pending.append(x)
            labels.append(y)
            if len(pending) == per_request:
                submit(pending)
                pending = []
        if pending:
            submit(pending)
    finally:  # also on Ctrl-C/SIGTERM/errors: no request is left running behind the caller's back
        queue.wait_all()
        bar.close()
    seconds = time.perf_counter() - t0
    return _result([logits[i] for i in range(len(logits))], labels, source, backend, seconds, len(pairs.skipped))


# ------------------------------------------------------------------ predictors
def torch_predictor(model: Any) -> Predict:
    import torch

    model.eval()

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()
    return predict


def numpy_predictor(weights: dict[str, np.ndarray]) -> Predict:
    import reference_np as rn

    w32 = rn.cast_weights(weights, np.float32)
    return lambda x: rn.forward(w32, x.astype(np.float32, copy=False))


def openvino_predictor(xml: str | os.PathLike, device: str = "CPU", precision: str | None = "f32") -> Predict:
    from ..runtime import compile_ov

    compiled = compile_ov(xml, device, precision)
    batch = compiled.input(0).get_partial_shape()[0]
    static = batch.get_length() if batch.is_static else None

    def predict(x: np.ndarray) -> np.ndarray:
        if static is None or x.shape[0] == static:
            return compiled(x)[0]
        # static batch: in chunks of it, the last one padded (its padding dropped)
        return np.concatenate([compiled(pad_batch(x[i:i + static], static))[0][:len(x[i:i + static])]
                               for i in range(0, len(x), static)])
    return predict


def ir_bin_bytes_needed(xml: Path) -> int:
    """The .bin size an IR's constants need (the largest offset + size of its Const layers)."""
    import xml.etree.ElementTree as ET

    need = 0
    for layer in ET.parse(xml).getroot().iter("layer"):
        if layer.get("type") == "Const":
            data = layer.find("data")
            if data is not None and data.get("offset") is not None:
                need = max(need, int(data.get("offset")) + int(data.get("size", 0)))
    return need


def read_ir(xml: str | os.PathLike) -> Any:
    """An IR with clear errors for a missing .xml, a missing or truncated .bin, an unreadable graph."""
    import xml.etree.ElementTree as ET

    import openvino as ov

    xml = Path(xml)
    if not xml.is_file():
        raise InputError(f"OpenVINO IR not found: {xml}")
    bin_path = xml.with_suffix(".bin")
    if not bin_path.is_file():
        raise InputError(f"OpenVINO IR {xml} has no weights file {bin_path.name} beside it")
    try:
        need = ir_bin_bytes_needed(xml)
    except ET.ParseError as e:
        raise InputError(f"OpenVINO IR {xml} is not valid XML ({e})") from None
    if bin_path.stat().st_size < need:
        raise InputError(f"OpenVINO IR {xml}: {bin_path.name} is truncated ({bin_path.stat().st_size:,} bytes; "
                         f"its constants need {need:,})")
    try:
        return ov.Core().read_model(str(xml))
    except RuntimeError as e:
        raise InputError(f"OpenVINO IR {xml} cannot be read: {str(e).splitlines()[0][:300]}") from None


def ir_input_size(model: Any, xml: str | os.PathLike) -> int | None:
    shape = model.input(0).get_partial_shape()
    if shape.rank.get_length() != 4:
        raise InputError(f"{xml}: input is {shape}, expected [B,3,H,W]")
    h, w = shape[2], shape[3]
    if h.is_static and w.is_static:
        if h.get_length() != w.get_length():
            raise InputError(f"{xml}: non-square input {shape}; pass images of that shape")
        return h.get_length()
    return None


def load_predictor(checkpoint: str, backend: Backend = "torch", variant: str = "cloformer_xxs"
                   ) -> tuple[Predict, int]:
    """(predict, default input size) for a checkpoint name/path (torch or numpy backend)."""
    predict, loaded = _checkpoint_predictor(checkpoint, backend, variant)
    return predict, loaded.input_size


def _checkpoint_predictor(checkpoint: str, backend: Backend, variant: str) -> tuple[Predict, Any]:
    from ..loading import load

    loaded = load(variant, checkpoint)
    return (numpy_predictor(loaded.weights) if backend == "numpy" else torch_predictor(loaded.model)), loaded


@dataclass(frozen=True)
class EvalJob:
    """What compress.evaluate evaluates, typed (its main() builds it from argv): `checkpoint` is a checkpoint
    name ('proxy') or path, or an OpenVINO .xml IR; `variant` the architecture of a checkpoint."""

    checkpoint: str
    data: str = "proxy-val"
    variant: str = "cloformer_xxs"
    backend: Backend | Literal["auto"] = "auto"  # auto: openvino for .xml, else torch
    device: str = "CPU"
    precision: Precision | None = "f32"  # None: the device's default
    input_size: int | None = None
    batch_size: int = 32
    limit: int | None = None
    workers: int | None = None
    exif: str = DEFAULT_EXIF  # data.EXIF_MODES

    def __post_init__(self) -> None:
        check_choice(self.backend, (*BACKENDS, "auto"), "backend")
        if self.precision is not None:
            check_choice(self.precision, PRECISIONS, "precision")


def evaluate_model(job: EvalJob) -> EvalResult:
    """`job.checkpoint` (a checkpoint or an IR) on `job.data`: top-1/top-5 and images/s (compress.evaluate)."""
    from ..data.sources import resolve_source

    ckpt = str(job.checkpoint)
    is_ir = ckpt.endswith(".xml")
    backend = job.backend if job.backend != "auto" else ("openvino" if is_ir else "torch")
    if is_ir and backend == "torch":
        raise InputError(f"{ckpt} is an OpenVINO IR: use backend openvino or numpy", field="backend")
    if is_ir:
        model = read_ir(ckpt)
        size = ir_input_size(model, ckpt)
        if size is not None and job.input_size is not None and job.input_size != size:
            raise InputError(f"{ckpt} takes {size}x{size} input; {job.input_size} does not fit", field="input_size")
        size = job.input_size or size or 224
        source = resolve_source(job.data, size, job.limit, exif=job.exif)
        out_classes = model.output(0).get_partial_shape()[-1]
        if out_classes.is_static:
            source.check_labels(out_classes.get_length())
        if backend == "numpy":
            from reference_np import ir as np_ir

            graph = np_ir.load(ckpt)
            return evaluate(lambda x: graph(x), source, 1, backend=f"{Path(ckpt).name} (NumPy)")
        return evaluate_openvino(model, source, OVRun(job.device, job.precision, job.workers), Path(ckpt).name)
    if backend == "openvino":
        raise InputError(f"backend openvino needs an .xml IR; {ckpt} is a checkpoint (torch or numpy)",
                         field="backend")
    predict, loaded = _checkpoint_predictor(ckpt, backend, job.variant)
    transform = loaded.transform if job.input_size is None else Preprocess.from_card(loaded.model.pretrained_cfg,
                                                                                     job.input_size)
    source = resolve_source(job.data, transform, job.limit, exif=job.exif)  # the model card's preprocessing
    source.check_labels(loaded.num_classes)
    return evaluate(predict, source, job.batch_size, backend=f"{ckpt} ({backend})")
