"""The compression stages, each with typed inputs and outputs:

    load -> calibration_data -> export -> quantize -> verify_fp32 / compare_int8 -> diagnose

Export writes the *deploy form* of the model (cloformer.DeployCloFormer, the same function written for
few executed nodes) through OpenVINO's PyTorch frontend, and the training form as ONNX beside it. It
converts a multi-output deploy graph (logits plus every named intermediate) and quantizes that: the
deployable INT8 IR is the same quantized graph with only the logits kept, so the per-layer diagnosis
measures exactly the quantizers that ship.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import cloformer
import reference_np as rn
from cloformer.deploy import DeployCloFormer, WithTaps
from cloformer.registry import resolve_checkpoint

from .data import DataSource
from .errors import InputError
from .metrics import agreement_ci95, cosine, rel_max, sqnr_db, top1_changes, topk_accuracy
from .settings import QuantSettings
from .tolerances import FLOAT32_REL, FLOAT64_ATOL

OPSET = 17  # TorchScript ONNX exporter; needs no onnxscript, and OpenVINO and ONNX Runtime read it


# ------------------------------------------------------------------ load
@dataclass
class LoadedModel:
    variant: str
    checkpoint: str
    model: cloformer.CloFormer  # float32, eval
    input_size: int
    weights: dict[str, np.ndarray]  # official keys, float32: what the NumPy reference runs

    @property
    def num_classes(self) -> int:
        return self.model.num_classes

    def deploy(self, dtype: torch.dtype = torch.float32) -> DeployCloFormer:
        return DeployCloFormer(self.weights, self.model.plan, dtype=dtype)


def load(variant: str, checkpoint: str | os.PathLike | None, input_size: int | None = None) -> LoadedModel:
    """Build the variant and load its checkpoint strictly; input size defaults to the checkpoint's own.
    Every problem with the checkpoint (missing, unreadable, wrong keys or shapes, NaN/Inf) is an InputError
    naming the file and the keys."""
    try:
        model = cloformer.create_model(variant, checkpoint=checkpoint, allow_pruned=True).float().eval()
    except (FileNotFoundError, IsADirectoryError, PermissionError, cloformer.CheckpointError,
            cloformer.UnknownModelError) as e:  # the known input conditions only: any other error is a bug
        raise InputError(str(e).strip("'\"")) from None
    size = int(input_size or model.pretrained_cfg["input_size"][-1])
    try:
        rn.specs.check_input_size(size, size)
    except ValueError as e:
        raise InputError(str(e)) from None
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    name = checkpoint if isinstance(checkpoint, str) and checkpoint in cloformer.SHIPPED else str(
        resolve_checkpoint(checkpoint) if checkpoint else "random-init")
    try:
        rn.check_finite(weights, f"checkpoint {name}")
    except ValueError as e:
        raise InputError(str(e)) from None
    return LoadedModel(variant, name, model, size, weights)


def output_bytes(loaded: LoadedModel, pruned: bool = False) -> int:
    """About what a run folder needs on disk: the FP32 IR and the ONNX file (4 bytes a weight each), the INT8 IR
    (~1.2 bytes a weight), reports and plots; a pruning run adds its checkpoint (at most 4 bytes a weight)."""
    n = sum(int(v.size) for v in loaded.weights.values())
    return int(n * (4 + 4 + 1.2 + (4 if pruned else 0))) + (4 << 20)


# ------------------------------------------------------------------ calibration
def calibration_data(source: DataSource) -> list[np.ndarray]:
    """Preprocessed [1,3,S,S] arrays of the calibration source (already sized by the caller)."""
    out = [x[None] for x, _ in tqdm(source, total=len(source), desc=f"calibration ({source.name})", unit="img")]
    if not out:
        raise InputError(f"calibration source {source.name} yielded no readable images")
    return out


# ------------------------------------------------------------------ export
@dataclass
class Exported:
    onnx_path: Path  # the training form, for ONNX Runtime and other toolchains
    fp32_xml: Path  # the deploy form, static [1,3,S,S], FP32 weights
    taps_model: Any  # ov.Model: the deploy graph with logits + named intermediates (not written)
    tap_names: list[str]


def single_output(model: Any) -> Any:
    """The same graph with only its first output (logits) kept; nodes that fed only the taps go too."""
    import openvino as ov

    return ov.Model([model.get_results()[0]], model.get_parameters(), "cloformer")


def convert_deploy(loaded: LoadedModel, taps: bool = False) -> Any:
    """The deploy form through OpenVINO's PyTorch frontend, static [1,3,S,S] yet reshapeable: it is converted
    with a dynamic input, so every Reshape takes its shape from ShapeOf of the tensor (a static conversion
    would freeze batch 1 and S into Reshape constants), and then its input is set to [1,3,S,S]. The CPU plugin
    folds that shape arithmetic at compile time: no executed node is added."""

    module = loaded.deploy()
    return _convert_reshapeable(WithTaps(module) if taps else module, loaded.input_size)


def _convert_reshapeable(module: torch.nn.Module, size: int) -> Any:
    """ov.convert_model with a dynamic input (Reshapes read their shapes off the tensor), then set static."""
    import openvino as ov

    with torch.no_grad():
        model = ov.convert_model(module, example_input=torch.zeros(1, 3, size, size), input=[[-1, 3, -1, -1]])
    model.reshape([1, 3, size, size])
    return model


def set_batch(xml: Path, batch: int, x: np.ndarray, min_sqnr_db: float | None = None) -> Check:
    """Rewrite a batch-1 IR in place with a static input batch (its input size kept), and check that each image
    of a batch gets its batch-1 logits with the f32 hint (x is tiled to fill the batch): an FP32 IR to
    FLOAT32_REL; an INT8 IR to `min_sqnr_db`, because its kernels differ per batch shape and a value next to
    a FakeQuantize threshold lands one step away (the same bound as OpenVINO against the graph's semantics)."""
    import openvino as ov

    x = np.resize(x, (batch, *x.shape[1:]))
    ref = run_ov(compile_ov(str(xml)), x)[0]
    model = ov.Core().read_model(str(xml))
    model.reshape([batch, *list(model.input(0).get_shape())[1:]])
    got = compile_ov(model)(x)[0]
    tmp = xml.with_name(f".{xml.stem}.batch{batch}.xml")
    ov.save_model(model, str(tmp), compress_to_fp16=False)
    tmp.with_suffix(".bin").replace(xml.with_suffix(".bin"))
    tmp.replace(xml)
    stage = f"{xml.name} at static batch {batch} <-> batch 1 (OpenVINO f32)"
    if min_sqnr_db is None:
        err = rel_max(got, ref)
        return Check(stage, "max|d| / max|ref|", err, FLOAT32_REL, err <= FLOAT32_REL)
    db = sqnr_db(got, ref)
    return Check(stage, "logit SQNR dB (at least)", db, min_sqnr_db, db >= min_sqnr_db)


def convert_plain(loaded: LoadedModel) -> Any:
    """The baseline a user gets without this tool: the training form through ov.convert_model (dynamic input, as
    ov.convert_model gives by default, then set to [1,3,S,S]; it reshapes to any batch as the deploy IRs do)."""
    return _convert_reshapeable(loaded.model, loaded.input_size)


def export(loaded: LoadedModel, out_dir: Path, taps_model: Any | None = None) -> Exported:
    """model_fp32.xml/.bin (deploy form, FP32 weights, not FP16) and model_fp32.onnx (training form); pass the
    taps model when it is already converted (the INT8 job converts first, to check the ignored scope)."""
    import onnx
    import openvino as ov

    x = torch.zeros(1, 3, loaded.input_size, loaded.input_size)
    onnx_path = out_dir / "model_fp32.onnx"
    with torch.no_grad():
        torch.onnx.export(loaded.model, (x,), str(onnx_path), dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}})
    onnx.checker.check_model(str(onnx_path), full_check=True)
    taps_model = taps_model if taps_model is not None else convert_deploy(loaded, taps=True)
    names = rn.specs.intermediate_names(loaded.model.plan, with_norm=False)
    for out, name in zip(taps_model.outputs, ["logits", *names], strict=True):
        out.get_tensor().set_names({name})
    if loaded.model.training:
        raise RuntimeError("export left the model in training mode")
    xml = out_dir / "model_fp32.xml"
    ov.save_model(single_output(taps_model), str(xml), compress_to_fp16=False)
    return Exported(onnx_path, xml, taps_model, names)


# ------------------------------------------------------------------ quantize
def check_ignored_scope(model: Any, settings: QuantSettings) -> None:
    """Every --ignored-scope entry must match a node of the graph (as NNCF's IgnoredScope(validate=True)),
    or a typo would silently quantize what the user meant to keep in float."""
    ops = [op for op in model.get_ops() if op.get_type_name() not in ("Constant", "Parameter", "Result")]
    types = {op.get_type_name() for op in ops}
    names = [op.get_friendly_name() for op in ops]
    for e in settings.ignored_scope:
        if e.kind == "type":
            hit = e.value in types
        elif e.kind == "name":
            hit = e.value in names
        else:
            rx = re.compile(e.value)
            hit = any(rx.fullmatch(n) for n in names)
        if not hit:
            hint = f" (op types here: {', '.join(sorted(types))})" if e.kind == "type" else \
                " (node names look like __module.layers.0.0.attn.qkvs.0/aten::_convolution/Convolution)"
            raise InputError(f"--ignored-scope '{e}' matches no node of the model{hint}")


def quantize(taps_model: Any, calib: list[np.ndarray], settings: QuantSettings) -> Any:
    """Post-training INT8 quantization with NNCF's OpenVINO backend."""
    import nncf

    check_ignored_scope(taps_model, settings)
    return nncf.quantize(taps_model, nncf.Dataset(calib), **settings.nncf_kwargs())


def quantize_with_accuracy_control(taps_model: Any, calib: list[np.ndarray], tuning: list[tuple[np.ndarray, int]],
                                   settings: QuantSettings, max_drop_pt: float) -> Any:
    """nncf.quantize_with_accuracy_control: reverts the most harmful quantizers until the top-1 drop on the
    *tuning* part is at most max_drop_pt (the caller reports the drop on a separate held-out part)."""
    import nncf

    check_ignored_scope(taps_model, settings)

    def validate(compiled: Any, data: Any) -> float:
        out = compiled.output(0)
        hits = [int(np.argmax(compiled(x)[out]) == y) for x, y in data]
        return float(np.mean(hits))

    kw = settings.nncf_kwargs()
    kw["advanced_quantization_parameters"] = kw.pop("advanced_parameters", None)
    return nncf.quantize_with_accuracy_control(
        taps_model, nncf.Dataset(calib), nncf.Dataset(tuning, lambda item: item[0]), validate,
        max_drop=max_drop_pt / 100.0, drop_type=nncf.DropType.ABSOLUTE, **kw)


def count_fake_quantize(model: Any) -> int:
    return sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops())


# ------------------------------------------------------------------ verify
@dataclass
class Check:
    stage: str
    metric: str
    value: float
    tolerance: float | None  # None: informational
    passed: bool | None


def default_precision(device: str = "CPU") -> str:
    """The precision the plugin runs FP32 IRs in by default, as the plugin itself reports it
    (INFERENCE_PRECISION_HINT): bf16 on AVX-512-BF16/AMX CPUs, f32 on AVX2-only ones, possibly f16 elsewhere."""
    import openvino as ov

    core = ov.Core()
    try:
        hint = str(core.get_property(device, "INFERENCE_PRECISION_HINT"))
    except RuntimeError:  # a device without the property (e.g. AUTO): fall back to its capabilities
        caps = core.get_property(device, "OPTIMIZATION_CAPABILITIES")
        return "bf16" if "BF16" in caps else ("f16" if "FP16" in caps else "f32")
    for key, name in (("bfloat16", "bf16"), ("bf16", "bf16"), ("f16", "f16"), ("float16", "f16"), ("f32", "f32"),
                      ("float32", "f32")):
        if key in hint.lower():
            return name
    return hint


def compile_ov(model: Any, device: str = "CPU", precision: str | None = "f32", **config: Any) -> Any:
    """Compile an IR path or ov.Model; on CPU, precision 'f32' forces true FP32 (a BF16-capable CPU would
    otherwise run FP32 IRs in BF16 silently)."""
    import openvino as ov

    cfg = {"INFERENCE_PRECISION_HINT": precision} if precision and device.upper().startswith("CPU") else {}
    cfg.update(config)
    return ov.Core().compile_model(str(model) if isinstance(model, (str, os.PathLike)) else model, device, cfg)


def run_ov(compiled: Any, batch: np.ndarray) -> list[np.ndarray]:
    """All outputs for a batch, run image by image (a batch-1 IR)."""
    per_image = [compiled(batch[i:i + 1]) for i in range(len(batch))]
    return [np.concatenate([r[k] for r in per_image]) for k in range(len(compiled.outputs))]


def twin_error(weights: dict[str, np.ndarray], x: np.ndarray, dtype: type = np.float64) -> float:
    """max |logit delta| between the NumPy reference and the torch model built from the same weights (read
    off the weights, so pruned ones too), both in `dtype`: the one NumPy-vs-torch twin check."""
    w = rn.cast_weights(weights, dtype)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    model = cloformer.CloFormer(rn.plan_from_weights(w)).to(tdtype).eval()
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in w.items()}, strict=True)
    with torch.no_grad():
        got = model(torch.from_numpy(x.astype(dtype))).numpy()
    return float(np.abs(got - rn.forward(w, x.astype(dtype))).max())


def verify_fp32(loaded: LoadedModel, exported: Exported, x: np.ndarray) -> list[Check]:
    """NumPy reference <-> torch (float64 and float32), deploy form <-> reference (float64), torch <-> ONNX
    Runtime, deploy IR (OpenVINO, f32 hint) <-> torch; the device's default precision for information."""
    import onnxruntime as ort

    ref = rn.forward(loaded.weights, x)
    # float64 checks on one 64x64 centre crop: the weights are what they check, and torch float64
    # convolutions are slow at full size (CloFormer-S at 224: over a minute an image)
    side = min(64, x.shape[-1])
    c = (x.shape[-1] - side) // 2
    x64 = x[:1, :, c:c + side, c:c + side].astype(np.float64)
    with torch.inference_mode():
        t = loaded.model(torch.from_numpy(x)).numpy()
        dep64 = loaded.deploy(torch.float64)(torch.from_numpy(x64)).numpy()
    ref64 = rn.forward(rn.cast_weights(loaded.weights), x64)
    sess = ort.InferenceSession(str(exported.onnx_path), providers=["CPUExecutionProvider"])
    onnx_out = np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])
    ov_f32 = run_ov(compile_ov(str(exported.fp32_xml), "CPU", "f32"), x)[0]
    ov_default = run_ov(compile_ov(str(exported.fp32_xml), "CPU", None), x)[0]
    checks = [Check("NumPy reference <-> torch, float64", "max|d|", twin_error(loaded.weights, x64), FLOAT64_ATOL,
                    None),
              Check("deploy form <-> NumPy reference, float64", "max|d|", float(np.abs(dep64 - ref64).max()),
                    FLOAT64_ATOL, None)]
    for stage, a, b in (("NumPy reference <-> torch FP32", t, ref), ("torch <-> ONNX Runtime", onnx_out, t),
                        ("torch <-> OpenVINO deploy IR (f32 hint)", ov_f32, t)):
        checks.append(Check(stage, "max|d| / max|ref|", rel_max(a, b), FLOAT32_REL, None))
    for c in checks:
        c.passed = c.value <= c.tolerance
    checks.append(Check(f"torch <-> OpenVINO deploy IR, CPU default precision ({default_precision()})",
                        "max|d| / max|ref|", rel_max(ov_default, t), None, None))
    return checks


@dataclass
class Int8Comparison:
    n: int
    source: str
    labelled: bool
    fp32_top1: float | None
    fp32_top5: float | None
    int8_top1: float | None
    int8_top5: float | None
    top1_drop: float | None  # points; negative: INT8 scored higher
    top1_agreement: float
    cosine: float
    sqnr_db: float
    disagreements: int  # images whose INT8 top-1 differs from FP32's
    agreement_ci95: tuple[float, float]  # Wilson interval, percent


def compare_int8(fp32_logits: np.ndarray, int8_logits: np.ndarray, labels: np.ndarray | None,
                 source: str) -> Int8Comparison:
    n = len(fp32_logits)
    differ = top1_changes(int8_logits, fp32_logits)
    acc = {(m, k): topk_accuracy(lg, labels, k) if labels is not None else None
           for m, lg in (("fp32", fp32_logits), ("int8", int8_logits)) for k in (1, 5)}
    drop = None if labels is None else acc["fp32", 1] - acc["int8", 1]
    return Int8Comparison(n, source, labels is not None, acc["fp32", 1], acc["fp32", 5], acc["int8", 1],
                          acc["int8", 5], drop, 100.0 * (n - differ) / n, cosine(int8_logits, fp32_logits),
                          sqnr_db(int8_logits, fp32_logits), differ, agreement_ci95(n - differ, n))


# ------------------------------------------------------------------ the graph's own semantics (NumPy IR executor)
# The MVN node's eps is a float32 attribute in OpenVINO's opset, so an IR holds 9.9999997e-06 where the
# reference uses 1e-5. With every constant in float64 that is the only difference left: measured on proxy-val
# crops, the logits differ by ~4e-12 as stored and by ~1e-15 with the attribute set back to 1e-5.

def convert_deploy_float64(loaded: LoadedModel, xml: Path) -> Path:
    """The deploy graph with float64 constants (not a deliverable): what the NumPy executor checks against the
    reference, separating the graph's structure from the float32 rounding of its folded constants."""
    import openvino as ov

    x = torch.zeros(1, 3, loaded.input_size, loaded.input_size, dtype=torch.float64)
    with torch.no_grad():
        model = ov.convert_model(loaded.deploy(torch.float64), example_input=x, input=[(list(x.shape), ov.Type.f64)])
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml


def numpy_ir_checks(loaded: LoadedModel, exported: Exported, x: np.ndarray, tmp: Path) -> list[Check]:
    """The exported graph run by NumPy alone (reference_np.ir), without OpenVINO's runtime:
    - the deploy graph with float64 constants against the reference: <= FLOAT64_ATOL (the converted graph is
      the same function);
    - the same with its MVN eps attribute (float32 in the opset) set back to 1e-5 (informational: what is left
      is summation order);
    - the shipped model_fp32.xml, whose folded constants are float32: <= FLOAT32_REL relative."""
    from reference_np import ir
    from reference_np.specs import GN_EPS

    x64 = x.astype(np.float64)
    ref = rn.forward(rn.cast_weights(loaded.weights), x64)

    def err(graph: Any, relative: bool = False) -> float:
        f = rel_max if relative else (lambda a, b: float(np.abs(a - b).max()))
        return max(f(graph(x64[i:i + 1]), ref[i:i + 1]) for i in range(len(x)))

    g64 = ir.load(convert_deploy_float64(loaded, tmp / "deploy_f64.xml"))
    stored = err(g64)
    for node in g64.nodes.values():
        if node.type == "MVN":
            node.attrs["eps"] = repr(GN_EPS)
    exact, e32 = err(g64), err(ir.load(exported.fp32_xml), relative=True)
    return [Check("deploy IR (float64 constants) run by NumPy <-> NumPy reference", "max|d|", stored,
                  FLOAT64_ATOL, stored <= FLOAT64_ATOL),
            Check("same, MVN eps attribute (float32: 9.9999997e-06) set to 1e-5", "max|d|", exact, None, None),
            Check("model_fp32.xml (float32 folded constants) run by NumPy <-> NumPy reference", "max|d| / max|ref|",
                  e32, FLOAT32_REL, e32 <= FLOAT32_REL)]


@dataclass
class GraphAgreement:
    """An OpenVINO device's INT8 output against the NumPy run of the same IR (the graph's ideal semantics)."""

    device: str
    precision: str
    n: int
    max_abs: float
    sqnr_db: float
    top1_agreement: float
    disagreements: int
    layers: list[tuple[str, float]]  # per-layer SQNR of the device's taps against NumPy's, forward order
    worst_layer: str | None
    # the same graph run by NumPy in float32 against float64: how far arithmetic precision alone moves this
    # INT8 graph (values next to a FakeQuantize rounding threshold land one step away) - the yardstick
    graph_f32_sqnr_db: float | None = None


@dataclass
class GraphRun:
    """The NumPy run of an INT8 IR on some images, made once for every device compared against it."""

    x: np.ndarray
    logits: np.ndarray  # float64, the graph's ideal semantics
    f32_sqnr_db: float  # the same graph run in float32 against float64 (the yardstick)
    taps: dict[str, np.ndarray]  # named intermediates of the first images (empty without a taps model)


def graph_run(int8_xml: Path, int8_taps_model: Any | None, tap_names: list[str], x: np.ndarray, tmp: Path,
              n_layers: int = 4) -> GraphRun:
    """reference_np.ir on x (one image at a time) in float64 and float32, and, given the quantized taps model,
    its named intermediates on the first n_layers images."""
    import openvino as ov

    from reference_np import ir

    def logits(dtype: type) -> np.ndarray:
        graph = ir.load(int8_xml, dtype)
        return np.concatenate([graph(x[i:i + 1]) for i in range(len(x))])

    ref = logits(np.float64)
    taps: dict[str, np.ndarray] = {}
    if int8_taps_model is not None:
        taps_xml = tmp / "int8_taps.xml"
        ov.save_model(int8_taps_model, str(taps_xml), compress_to_fp16=False)
        taps_graph = ir.load(taps_xml)
        runs = [taps_graph.run(x[i:i + 1], tap_names) for i in range(min(n_layers, len(x)))]
        taps = {name: np.concatenate([r[name] for r in runs]) for name in tap_names}
    return GraphRun(x, ref, sqnr_db(logits(np.float32), ref), taps)


def runtime_vs_graph(run: GraphRun, int8_xml: Path, int8_taps_model: Any | None, device: str = "CPU",
                     precision: str | None = "f32") -> GraphAgreement:
    """Logits of `device` running int8_xml against the NumPy run, and per-layer SQNR at the named taps."""
    got = run_ov(compile_ov(str(int8_xml), device, precision), run.x)[0].astype(np.float64)
    layers: list[tuple[str, float]] = []
    if run.taps:
        n = len(next(iter(run.taps.values())))
        dev_taps = run_ov(compile_ov(int8_taps_model, device, precision), run.x[:n])
        layers = [(name, sqnr_db(dev_taps[k + 1], mine)) for k, (name, mine) in enumerate(run.taps.items())]
    differ = top1_changes(got, run.logits)
    n_img = len(run.x)
    return GraphAgreement(device, precision or "default", n_img, float(np.abs(got - run.logits).max()),
                          sqnr_db(got, run.logits), 100.0 * (n_img - differ) / n_img, differ, layers,
                          min(layers, key=lambda t: t[1])[0] if layers else None, run.f32_sqnr_db)


# ------------------------------------------------------------------ diagnose
@dataclass
class LayerSQNR:
    name: str
    int8_db: float  # INT8 IR activation vs the NumPy reference (float64)
    fp32_db: float  # FP32 IR activation vs the reference: shows the export itself is exact


def diagnose(loaded: LoadedModel, exported: Exported, int8_taps_model: Any, x: np.ndarray) -> list[LayerSQNR]:
    """Per-layer SQNR of the INT8 and FP32 IRs' named activations against the NumPy reference."""
    _, ref = rn.forward(rn.cast_weights(loaded.weights), x.astype(np.float64), return_intermediates=True)
    int8 = run_ov(compile_ov(int8_taps_model, "CPU", "f32"), x)
    fp32 = run_ov(compile_ov(exported.taps_model, "CPU", "f32"), x)
    return [LayerSQNR(n, sqnr_db(int8[k + 1], ref[n]), sqnr_db(fp32[k + 1], ref[n]))
            for k, n in enumerate(exported.tap_names)]


@dataclass
class Timer:
    """Per-stage wall-clock seconds: call with a stage name when that stage ends."""

    times: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import time

        self._clock = time.perf_counter
        self._t = self._clock()

    def __call__(self, stage: str) -> None:
        now = self._clock()
        self.times[stage] = round(self.times.get(stage, 0.0) + now - self._t, 2)
        self._t = now
