"""Verification: every stage against the NumPy reference (twins, ONNX Runtime, OpenVINO, the NumPy IR executor),
INT8 against FP32, OpenVINO's INT8 against the graph's own semantics, and the per-layer diagnosis."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import cloformer
import reference_np as rn

from .export import Exported, convert_deploy_float64
from .loading import LoadedModel
from .metrics import graph_agreement, rel_max, sqnr_db
from .report import Check, GraphAgreement, LayerSQNR
from .runtime import compile_ov, default_precision, run_ov
from .tolerances import FLOAT32_REL, FLOAT64_ATOL

FLOAT64_SIDE = 64  # float64 checks run on a centre crop this big


def float64_crop(x: np.ndarray) -> np.ndarray:
    """The float64 checks' input: a 64x64 centre crop of x [B,3,H,W], in float64. The weights are what those
    checks are about, and torch float64 convolutions are slow at full size (CloFormer-S at 224: a minute an
    image)."""
    side = min(FLOAT64_SIDE, x.shape[-1], x.shape[-2])
    top, left = (x.shape[-2] - side) // 2, (x.shape[-1] - side) // 2
    return np.ascontiguousarray(x[..., top:top + side, left:left + side], dtype=np.float64)


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
    x64 = float64_crop(x[:1])
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


# The MVN node's eps is a float32 attribute in OpenVINO's opset, so an IR holds 9.9999997e-06 where the
# reference uses 1e-5. With every constant in float64 that is the only difference left: the logits differ by
# far less than FLOAT64_ATOL as stored, and by summation order alone with the attribute set back to 1e-5.
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

    f64_xml = convert_deploy_float64(loaded, tmp / "deploy_f64.xml")
    stored = err(ir.load(f64_xml))
    exact = err(ir.load(f64_xml, overrides={"MVN": {"eps": repr(GN_EPS)}}))
    e32 = err(ir.load(exported.fp32_xml), relative=True)
    return [Check("deploy IR (float64 constants) run by NumPy <-> NumPy reference", "max|d|", stored,
                  FLOAT64_ATOL, stored <= FLOAT64_ATOL),
            Check("same, MVN eps attribute (float32: 9.9999997e-06) set to 1e-5", "max|d|", exact, None, None),
            Check("model_fp32.xml (float32 folded constants) run by NumPy <-> NumPy reference", "max|d| / max|ref|",
                  e32, FLOAT32_REL, e32 <= FLOAT32_REL)]


@dataclass
class GraphRun:
    """The NumPy run of an INT8 IR on some images, made once for every device compared against it."""

    x: np.ndarray
    logits: np.ndarray  # float64, the graph's ideal semantics
    f32_sqnr_db: float  # the same graph run in float32 against float64 (the yardstick)
    taps: dict[str, np.ndarray]  # named intermediates of the first images (empty without a taps model)


N_TAP_IMAGES = 4  # images whose named intermediates the NumPy executor runs (the per-layer comparison)
GRAPH_BATCH = 8  # images a NumPy run of an IR takes at once (memory bounded at 224 px, float64)


def graph_run(int8_xml: Path, int8_taps_model: Any | None, tap_names: list[str], x: np.ndarray,
              tmp: Path) -> GraphRun:
    """reference_np.ir on x (GRAPH_BATCH images at a time: the IRs take any batch) in float64 and float32, and,
    given the quantized taps model, its named intermediates on the first N_TAP_IMAGES images."""
    import openvino as ov

    from reference_np import ir

    def logits(dtype: type) -> np.ndarray:
        graph = ir.load(int8_xml, dtype)
        return np.concatenate([graph(x[i:i + GRAPH_BATCH]) for i in range(0, len(x), GRAPH_BATCH)])

    ref = logits(np.float64)
    taps: dict[str, np.ndarray] = {}
    if int8_taps_model is not None:
        taps_xml = tmp / "int8_taps.xml"
        ov.save_model(int8_taps_model, str(taps_xml), compress_to_fp16=False)
        taps_graph = ir.load(taps_xml)
        runs = [taps_graph.run(x[i:i + 1], tap_names) for i in range(min(N_TAP_IMAGES, len(x)))]
        taps = {name: np.concatenate([r[name] for r in runs]) for name in tap_names}
    return GraphRun(x, ref, sqnr_db(logits(np.float32), ref), taps)


def compiled(model: Any, device: str = "CPU", precision: str | None = "f32") -> Any:
    """An ov.Model compiled for (device, precision) by compile_ov; a compiled model as it is (its caller compiled
    it for the same device and precision, to run it once for two comparisons)."""
    import openvino as ov

    return model if isinstance(model, ov.CompiledModel) else compile_ov(model, device, precision)


def runtime_vs_graph(run: GraphRun, int8_xml: Path, int8_taps_model: Any | None, device: str = "CPU",
                     precision: str | None = "f32") -> GraphAgreement:
    """Logits of `device` running int8_xml against the NumPy run, and per-layer SQNR at the named taps (the taps
    model an ov.Model, or compiled for this device and precision)."""
    got = run_ov(compile_ov(str(int8_xml), device, precision), run.x)[0].astype(np.float64)
    layers: list[tuple[str, float]] = []
    if run.taps:
        n = len(next(iter(run.taps.values())))
        dev_taps = run_ov(compiled(int8_taps_model, device, precision), run.x[:n])
        layers = [(name, sqnr_db(dev_taps[k + 1], mine)) for k, (name, mine) in enumerate(run.taps.items())]
    return graph_agreement(got, run.logits, device, precision or "default", layers, run.f32_sqnr_db)


def diagnose(loaded: LoadedModel, exported: Exported, int8_taps_model: Any, x: np.ndarray) -> list[LayerSQNR]:
    """Per-layer SQNR of the INT8 and FP32 IRs' named activations against the NumPy reference (the INT8 taps
    model an ov.Model, or compiled for CPU at f32)."""
    _, ref = rn.forward(rn.cast_weights(loaded.weights), x.astype(np.float64), return_intermediates=True)
    int8 = run_ov(compiled(int8_taps_model, "CPU", "f32"), x)
    fp32 = run_ov(compile_ov(exported.taps_model, "CPU", "f32"), x)
    return [LayerSQNR(n, sqnr_db(int8[k + 1], ref[n]), sqnr_db(fp32[k + 1], ref[n]))
            for k, n in enumerate(exported.tap_names)]
