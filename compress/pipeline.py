"""The INT8 pipeline as small stages with typed inputs and outputs:

    load -> calibration_data -> export -> quantize -> verify_fp32 / compare_int8 -> diagnose -> report

Export writes a *multi-output* FP32 model (logits plus every named intermediate, in the NumPy reference's
names) next to the deployable single-output one, and quantizes the multi-output graph: the deployable
INT8 IR is that same quantized graph with only the logits output kept, so the per-layer diagnosis
measures exactly the quantizers that ship.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import cloformer
import reference_np as rn
from cloformer.registry import resolve_checkpoint

from .atomic import staging_dir  # noqa: F401 (re-exported: the pipeline's output stage)
from .data import DataSource
from .evaluate import compile_ov
from .metrics import agreement_ci95, cosine, rel_max, sqnr_db, top1_changes
from .tolerances import FLOAT32_REL

OPSET = 17  # TorchScript exporter; needs no onnxscript, and OpenVINO reads it


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


def load(variant: str, checkpoint: str | os.PathLike | None, input_size: int | None = None) -> LoadedModel:
    """Build the variant, load its checkpoint strictly; input size defaults to the checkpoint's own."""
    model = cloformer.create_model(variant, checkpoint=checkpoint, allow_pruned=True).float().eval()
    size = int(input_size or model.pretrained_cfg["input_size"][-1])
    rn.specs.check_input_size(size, size)
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    name = checkpoint if isinstance(checkpoint, str) and checkpoint in cloformer.SHIPPED else str(
        resolve_checkpoint(checkpoint) if checkpoint else "random-init")
    return LoadedModel(variant, name, model, size, weights)


# ------------------------------------------------------------------ calibration
def calibration_data(source: DataSource, subset_size: int, seed: int = 0) -> list[np.ndarray]:
    """Up to subset_size preprocessed [1,3,S,S] arrays (a seeded subset when the source is larger)."""
    src = source.subset(subset_size, seed)
    out = [x[None] for x, _ in tqdm(src, total=len(src), desc=f"calibration ({source.name})", unit="img")]
    if not out:
        raise ValueError(f"calibration source {source.name} yielded no readable images")
    return out


# ------------------------------------------------------------------ export
def tap_names(model: cloformer.CloFormer) -> list[str]:
    """The named intermediates compared per layer (NumPy reference names), in forward order."""
    names = ["patch_embed"]
    for i, layer in enumerate(model.layers):
        for j in range(len(layer.blocks)):
            p = f"layers.{i}.blocks.{j}"
            names += [f"{p}.attn", f"{p}.mlp", p]
    return [*names, "features"]


class _WithTaps(torch.nn.Module):
    def __init__(self, model: cloformer.CloFormer, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, taps = cloformer.intermediates(self.model, x)
        return (logits, *[taps[n] for n in self.names])


@dataclass
class Exported:
    onnx_path: Path
    fp32_xml: Path
    taps_model: Any  # ov.Model: logits + named intermediates (not written as a deliverable)
    tap_names: list[str]


def single_output(model: Any) -> Any:
    """The same graph with only its first output (logits) kept."""
    import openvino as ov

    return ov.Model([model.get_results()[0]], model.get_parameters(), "cloformer")


def export(loaded: LoadedModel, out_dir: Path) -> Exported:
    """model_fp32.onnx (checked) and model_fp32.xml/.bin (static [1,3,S,S], FP32 weights, not FP16)."""
    import onnx
    import openvino as ov

    x = torch.zeros(1, 3, loaded.input_size, loaded.input_size)
    onnx_path = out_dir / "model_fp32.onnx"
    with torch.no_grad():
        torch.onnx.export(loaded.model, (x,), str(onnx_path), dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=["logits"])
    onnx.checker.check_model(str(onnx_path), full_check=True)
    names = tap_names(loaded.model)
    with tempfile.TemporaryDirectory() as tmp:
        taps_onnx = Path(tmp) / "taps.onnx"
        with torch.no_grad():
            # eval(): torch.onnx.export restores the wrapper's mode afterwards, and a fresh wrapper is in
            # training mode, which would leave the CloFormer inside it training (BatchNorm on batch stats)
            torch.onnx.export(_WithTaps(loaded.model, names).eval(), (x,), str(taps_onnx), dynamo=False,
                              opset_version=OPSET, input_names=["input"], output_names=["logits", *names])
        taps_model = ov.convert_model(str(taps_onnx))
    if loaded.model.training:
        raise RuntimeError("export left the model in training mode")
    xml = out_dir / "model_fp32.xml"
    ov.save_model(single_output(taps_model), str(xml), compress_to_fp16=False)
    return Exported(onnx_path, xml, taps_model, names)


# ------------------------------------------------------------------ quantize
# NNCF's activation range estimators (RangeEstimatorParametersSet), by lower-case name. minmax: global min/max
# over the calibration set; mean_minmax (NNCF's default): the mean of per-sample min/max; mean_quantile: the
# mean of per-sample 0.01%/99.99% quantiles; histogram: an MSE-optimal range from a histogram.
ACTIVATION_RANGES = ("minmax", "mean_minmax", "mean_quantile", "mean_no_outliers_minmax", "median_minmax",
                     "histogram")


@dataclass
class QuantSettings:
    """nncf.quantize settings. The defaults were chosen by measurement on the proxy model (README, INT8
    defaults): NNCF's own defaults (mean-of-per-sample min/max ranges) clip the input image and the
    stem's activations and lose 2 pt; global min/max ranges and a float stem and GroupNorm fix that. The
    transformer model type with SmoothQuant 0.8 was chosen on a separate selection set of held-out crops
    (`tools.sweep_quant --selection 200`): 39 of 3200 top-1 changes against 48 without it."""

    preset: str = "performance"  # performance | mixed
    model_type: str | None = "transformer"  # None | transformer
    fast_bias_correction: bool = True
    activation_range: str = "minmax"  # one of ACTIVATION_RANGES
    # kept in float: the stem (input and ReLU ranges), GroupNorm (MVN) outputs, attention's element-wise products
    ignored_types: list[str] = field(default_factory=lambda: ["MVN", "Multiply"])
    ignored_names: list[str] = field(default_factory=list)
    ignored_patterns: list[str] = field(default_factory=lambda: [".*patch_embed.*"])
    # SmoothQuant (transformer type only) for convolutions and MatMuls; negative disables it, None: NNCF's default
    smooth_quant_alpha: float | None = 0.8
    subset_size: int = 300

    def nncf_kwargs(self) -> dict[str, Any]:
        import nncf
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters
        from nncf.quantization.range_estimator import RangeEstimatorParametersSet

        kw: dict[str, Any] = dict(
            preset=nncf.QuantizationPreset.MIXED if self.preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE,
            model_type=nncf.ModelType.TRANSFORMER if self.model_type == "transformer" else None,
            fast_bias_correction=self.fast_bias_correction, subset_size=self.subset_size,
            target_device=nncf.TargetDevice.ANY)
        if self.ignored_types or self.ignored_names or self.ignored_patterns:
            kw["ignored_scope"] = nncf.IgnoredScope(names=self.ignored_names, patterns=self.ignored_patterns,
                                                    types=self.ignored_types, validate=False)
        if self.activation_range not in ACTIVATION_RANGES:
            raise ValueError(f"activation range '{self.activation_range}': expected one of "
                             f"{', '.join(ACTIVATION_RANGES)}")
        ranges = getattr(RangeEstimatorParametersSet, self.activation_range.upper())
        adv: dict[str, Any] = {"activations_range_estimator_params": ranges}
        if self.smooth_quant_alpha is not None:
            a = self.smooth_quant_alpha
            adv["smooth_quant_alphas"] = AdvancedSmoothQuantParameters(convolution=a, matmul=a)
        kw["advanced_parameters"] = AdvancedQuantizationParameters(**adv)
        return kw


def quantize(taps_model: Any, calib: list[np.ndarray], settings: QuantSettings) -> Any:
    """Post-training INT8 quantization with NNCF's OpenVINO backend."""
    import nncf

    return nncf.quantize(taps_model, nncf.Dataset(calib), **settings.nncf_kwargs())


def quantize_with_accuracy_control(taps_model: Any, calib: list[np.ndarray], val: list[tuple[np.ndarray, int]],
                                   settings: QuantSettings, max_drop_pt: float) -> Any:
    """nncf.quantize_with_accuracy_control: reverts the most harmful quantizers until the top-1 drop on
    `val` is at most max_drop_pt (percentage points). NNCF compiles both models with CPU defaults."""
    import nncf

    def validate(compiled: Any, data: Any) -> float:
        out = compiled.output(0)
        hits = [int(np.argmax(compiled(x)[out]) == y) for x, y in data]
        return float(np.mean(hits))

    kw = settings.nncf_kwargs()
    kw["advanced_quantization_parameters"] = kw.pop("advanced_parameters", None)
    return nncf.quantize_with_accuracy_control(
        taps_model, nncf.Dataset(calib), nncf.Dataset(val, lambda item: item[0]), validate,
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


def run_ov(compiled: Any, batch: np.ndarray) -> list[np.ndarray]:
    """All outputs for a batch, run image by image (the IR's batch is static 1)."""
    per_image = [compiled(batch[i:i + 1]) for i in range(len(batch))]
    return [np.concatenate([r[k] for r in per_image]) for k in range(len(compiled.outputs))]


def verify_fp32(loaded: LoadedModel, exported: Exported, x: np.ndarray) -> list[Check]:
    """NumPy reference <-> torch, torch <-> ONNX Runtime, torch <-> OpenVINO FP32 (f32 hint); BF16 for info."""
    import onnxruntime as ort

    ref = rn.forward(loaded.weights, x)
    with torch.inference_mode():
        t = loaded.model(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(exported.onnx_path), providers=["CPUExecutionProvider"])
    onnx_out = np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])
    ov_f32 = run_ov(compile_ov(str(exported.fp32_xml), "CPU", "f32"), x)[0]
    ov_default = run_ov(compile_ov(str(exported.fp32_xml), "CPU", None), x)[0]
    checks = []
    for stage, a, b in (("NumPy reference <-> torch FP32", t, ref), ("torch <-> ONNX Runtime", onnx_out, t),
                        ("torch <-> OpenVINO FP32 IR (f32 hint)", ov_f32, t)):
        v = rel_max(a, b)
        checks.append(Check(stage, "max|d| / max|ref|", v, FLOAT32_REL, v <= FLOAT32_REL))
    checks.append(Check(f"torch <-> OpenVINO FP32 IR, CPU default precision ({default_precision()})",
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
    top1_agreement: float
    cosine: float
    sqnr_db: float
    disagreements: int  # images whose INT8 top-1 differs from FP32's
    agreement_ci95: tuple[float, float]  # Wilson interval, percent

    @property
    def top1_drop(self) -> float | None:
        return None if self.fp32_top1 is None else self.fp32_top1 - self.int8_top1


def compare_int8(fp32_logits: np.ndarray, int8_logits: np.ndarray, labels: np.ndarray | None,
                 source: str) -> Int8Comparison:
    def acc(lg: np.ndarray, k: int) -> float | None:
        if labels is None:
            return None
        top = np.argsort(-lg, axis=1, kind="stable")[:, :k]
        return float(100 * np.mean((top == labels[:, None]).any(axis=1)))

    n = len(fp32_logits)
    differ = top1_changes(int8_logits, fp32_logits)
    return Int8Comparison(n, source, labels is not None, acc(fp32_logits, 1), acc(fp32_logits, 5),
                          acc(int8_logits, 1), acc(int8_logits, 5), 100.0 * (n - differ) / n,
                          cosine(int8_logits, fp32_logits), sqnr_db(int8_logits, fp32_logits), differ,
                          agreement_ci95(n - differ, n))


# ------------------------------------------------------------------ diagnose
@dataclass
class LayerSQNR:
    name: str
    int8_db: float  # INT8 IR activation vs the NumPy reference (float64)
    fp32_db: float  # FP32 IR activation vs the reference: shows the export itself is exact


def diagnose(loaded: LoadedModel, exported: Exported, int8_taps_model: Any, x: np.ndarray) -> list[LayerSQNR]:
    """Per-layer SQNR of the INT8 and FP32 IRs' named activations against the NumPy reference."""
    _, ref = rn.forward({k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in loaded.weights.items()},
                        x.astype(np.float64), return_intermediates=True)
    int8 = run_ov(compile_ov(int8_taps_model, "CPU", "f32"), x)
    fp32 = run_ov(compile_ov(exported.taps_model, "CPU", "f32"), x)
    return [LayerSQNR(n, sqnr_db(int8[k + 1], ref[n]), sqnr_db(fp32[k + 1], ref[n]))
            for k, n in enumerate(exported.tap_names)]
