"""Export: the deploy form of the model (cloformer.DeployCloFormer, the same function written for few executed
nodes) through OpenVINO's PyTorch frontend, reshapeable and saved static; the training form as ONNX beside it; the
plain baseline a user gets without this tool; a static batch written into an IR.

The deploy graph is converted with taps (logits plus every named intermediate) and quantized so: the deployable
INT8 IR is the same quantized graph with only the logits kept, so the per-layer diagnosis measures exactly the
quantizers that ship.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import reference_np as rn
from cloformer.deploy import WithTaps

from .loading import LoadedModel
from .metrics import rel_max, sqnr_db
from .report import Check
from .runtime import compile_ov, default_precision, run_ov
from .tolerances import FLOAT32_REL

OPSET = 17  # TorchScript ONNX exporter; needs no onnxscript, and OpenVINO and ONNX Runtime read it


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


def save_deployable(model: Any, xml: Path) -> Path:
    """`model`'s logits-only graph written as an IR with FP32 weights (OpenVINO would halve them to FP16 by
    default): how every IR of this project is saved, FP32 and INT8 alike."""
    import openvino as ov

    ov.save_model(single_output(model), str(xml), compress_to_fp16=False)
    return xml


def as_read_back(model: Any) -> Any:
    """`model` (every output kept) saved as an IR and read back, owning its weights: the graph a user's runtime
    loads. Every model this project compiles is one, because OpenVINO 2026.4.1's CPU plugin can crash (SIGSEGV
    in JIT code) on an in-memory ov.Model that runs once read back: seen under ONEDNN_MAX_CPU_ISA=AVX2 on an
    AVX-512 BF16 CPU, at f32, for the converted deploy form with every ConvFFN negated (test_outputs' failed-check
    twin) and for its nncf.quantize result; the two graphs hold the same ops and types."""
    import openvino as ov

    with tempfile.TemporaryDirectory() as scratch:
        xml = Path(scratch) / "model.xml"
        ov.save_model(model, str(xml), compress_to_fp16=False)
        return ov.Core().read_model(str(xml), config={"ENABLE_MMAP": False})


def convert_deploy(loaded: LoadedModel, taps: bool = False) -> Any:
    """The deploy form through OpenVINO's PyTorch frontend, static [1,3,S,S] yet reshapeable: it is converted
    with a dynamic input, so every Reshape takes its shape from ShapeOf of the tensor (a static conversion
    would freeze batch 1 and S into Reshape constants), and then its input is set to [1,3,S,S]. The CPU plugin
    folds that shape arithmetic at compile time: no executed node is added."""

    module = loaded.deploy()
    return convert_reshapeable(WithTaps(module) if taps else module, loaded.input_size)


def convert_reshapeable(module: torch.nn.Module, size: int) -> Any:
    """ov.convert_model with a dynamic input (Reshapes read their shapes off the tensor), then set static."""
    import openvino as ov

    with torch.no_grad():
        model = ov.convert_model(module, example_input=torch.zeros(1, 3, size, size), input=[[-1, 3, -1, -1]])
    model.reshape([1, 3, size, size])
    return as_read_back(model)


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
    own_precision = default_precision() if db < min_sqnr_db else "f32"
    if own_precision != "f32":
        # Said beside the failure, not instead of it: the f32 kernels of a static batch compute other logits on
        # this CPU, while the device's own precision may still agree (then the departure is the plugin's, not
        # the IR's: docs/results/isa-matrix.md)
        one = compile_ov(model, precision=None, shape=[1, *list(model.input(0).get_shape())[1:]])
        own = sqnr_db(compile_ov(model, precision=None)(x)[0], run_ov(one, x)[0])
        stage += f"; at the default precision ({own_precision}) " + (f"{own:.1f} dB" if np.isfinite(own) else
                                                                     "the same logits as batch 1")
    return Check(stage, "logit SQNR dB (at least)", db, min_sqnr_db, db >= min_sqnr_db)


def name_taps(taps_model: Any, loaded: LoadedModel) -> list[str]:
    """Names the outputs of a converted taps graph (logits, then the reference's intermediates) in place; returns
    the intermediates' names."""
    names = rn.specs.intermediate_names(loaded.model.plan, with_norm=False)
    for out, name in zip(taps_model.outputs, ["logits", *names], strict=True):
        out.get_tensor().set_names({name})
    return names


def convert_plain(loaded: LoadedModel) -> Any:
    """The baseline a user gets without this tool: the training form through ov.convert_model (dynamic input, as
    ov.convert_model gives by default, then set to [1,3,S,S]; it reshapes to any batch as the deploy IRs do)."""
    return convert_reshapeable(loaded.model, loaded.input_size)


def export(loaded: LoadedModel, out_dir: Path, taps_model: Any | None = None) -> Exported:
    """model_fp32.xml/.bin (deploy form, FP32 weights, not FP16) and model_fp32.onnx (training form); pass the
    taps model when it is already converted (the INT8 job converts first, to check the ignored scope)."""
    import onnx

    x = torch.zeros(1, 3, loaded.input_size, loaded.input_size)
    onnx_path = out_dir / "model_fp32.onnx"
    with torch.no_grad():
        torch.onnx.export(loaded.model, (x,), str(onnx_path), dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}})
    onnx.checker.check_model(str(onnx_path), full_check=True)
    taps_model = taps_model if taps_model is not None else convert_deploy(loaded, taps=True)
    names = name_taps(taps_model, loaded)
    if loaded.model.training:
        raise RuntimeError("export left the model in training mode")
    xml = out_dir / "model_fp32.xml"
    save_deployable(taps_model, xml)
    return Exported(onnx_path, xml, taps_model, names)


def convert_deploy_float64(loaded: LoadedModel, xml: Path) -> Path:
    """The deploy graph with float64 constants (not a deliverable): what the NumPy executor checks against the
    reference, separating the graph's structure from the float32 rounding of its folded constants."""
    import openvino as ov

    x = torch.zeros(1, 3, loaded.input_size, loaded.input_size, dtype=torch.float64)
    with torch.no_grad():
        model = ov.convert_model(loaded.deploy(torch.float64), example_input=x, input=[(list(x.shape), ov.Type.f64)])
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml
