"""Every IR the tools write reshapes like any OpenVINO model (any batch N, any input size that is a
multiple of 32), each image of a batch gets its batch-1 logits, and --batch N writes a static batch-N IR."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch

import cloformer
import reference_np as rn
from compress import export, loading, quantize, runtime
from compress.data.sources import resolve_source
from compress.evaluate.job import OVRun, evaluate_openvino, openvino_predictor
from compress.int8 import ptq
from compress.int8 import steps as quantization
from compress.metrics import sqnr_db
from compress.prune import structured
from compress.runtime import own_isa, runtime_graph
from compress.settings import QuantSettings
from compress.targets import TARGET_MIN_GRAPH_SQNR_DB
from compress.tolerances import FLOAT32_REL, INT8_RUNTIME_MARGIN_DB
from reference_np import ir
from tests.helpers import QUICK_QUANT, random_scores

SIZE = 64
QUICK_Q = QuantSettings(subset_size=8, **QUICK_QUANT)


def _pruned(loaded: loading.LoadedModel) -> loading.LoadedModel:
    plan = loaded.model.plan
    weights = structured.slice_weights(loaded.weights, plan, structured.select(plan, random_scores(plan, 3), 0.45, 16))
    model = cloformer.CloFormer(rn.plan_from_weights(weights)).float().eval()
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()}, strict=True)
    return loading.LoadedModel(loaded.variant, "pruned", model, loaded.input_size, weights)


@pytest.fixture(scope="module")
def irs(tmp_path_factory) -> dict[str, Path]:
    """FP32 and INT8 deploy IRs of the proxy model and of a structured-pruned one, and the ONNX-route IR."""
    d = tmp_path_factory.mktemp("irs")
    calib = quantization.calibration_data(resolve_source("sample", SIZE).subset(8))
    out: dict[str, Path] = {}
    loaded = loading.load("cloformer_xxs", "proxy", SIZE)
    for tag, lm in (("proxy", loaded), ("proxy-pruned", _pruned(loaded))):
        (d / tag).mkdir()
        exported = export.export(lm, d / tag)
        out[f"{tag} fp32"] = exported.fp32_xml
        int8 = ptq.quantize(exported.taps_model, calib, QUICK_Q)
        out[f"{tag} int8"] = d / tag / "model_int8.xml"
        export.save_deployable(int8, out[f"{tag} int8"])
    onnx_ir = ov.convert_model(str(d / "proxy" / "model_fp32.onnx"))
    out["onnx route"] = d / "onnx.xml"
    ov.save_model(onnx_ir, str(out["onnx route"]), compress_to_fp16=False)
    return out


def _images(n: int, size: int) -> np.ndarray:
    return np.stack([x for x, _ in resolve_source("proxy-val", size).subset(n, seed=5)]).astype(np.float32)


def _reshaped(xml: Path, shape: list[int]) -> object:
    model = ov.Core().read_model(str(xml))
    model.reshape(shape)
    return runtime.compile_ov(model)


@pytest.mark.parametrize("key", ["proxy fp32", "proxy int8", "proxy-pruned fp32", "proxy-pruned int8", "onnx route"])
@pytest.mark.parametrize("n,size", [(1, SIZE), (3, SIZE), (8, SIZE), (3, 96)])
@pytest.mark.isa_bound
def test_reshaped_batch_gives_each_image_its_batch1_logits(irs, key: str, n: int, size: int) -> None:
    x = _images(n, size)
    one = _reshaped(irs[key], [1, 3, size, size])
    ref = np.concatenate([one(x[i:i + 1])[0] for i in range(n)])
    got = _reshaped(irs[key], [n, 3, size, size])(x)[0]
    assert got.shape == (n, 16)
    if "int8" not in key:
        assert np.abs(got - ref).max() <= FLOAT32_REL * np.abs(ref).max()
        return
    # INT8: kernels are chosen per shape, so a value next to a FakeQuantize threshold may land one step away;
    # held to the graph's own float32 sensitivity less the runtime margin (tolerances.py), top-1 unchanged
    g64, g32 = ir.load(irs[key]), ir.load(irs[key], np.float32)
    yardstick = sqnr_db(g32(x), g64(x))
    assert sqnr_db(got, ref) >= yardstick - INT8_RUNTIME_MARGIN_DB
    assert (got.argmax(1) == ref.argmax(1)).all()


@pytest.mark.parametrize("key", ["proxy fp32", "proxy-pruned int8"])
@pytest.mark.isa_bound
def test_saved_irs_are_static_batch1_and_numpy_executor_follows_the_input(irs, key: str) -> None:
    """The file keeps its static [1,3,S,S] (NPUs want static shapes); the NumPy executor reads batch and size off
    its input and agrees with OpenVINO on a reshaped batch."""
    model = ov.Core().read_model(str(irs[key]))
    assert list(model.input(0).get_shape()) == [1, 3, SIZE, SIZE]
    x = _images(3, 96)
    graph = ir.load(irs[key])
    mine = graph(x)
    assert np.abs(mine - np.concatenate([graph(x[i:i + 1]) for i in range(3)])).max() <= 1e-12
    theirs = _reshaped(irs[key], [3, 3, 96, 96])(x)[0]
    if key.endswith("fp32"):
        assert np.abs(theirs - mine).max() <= FLOAT32_REL * np.abs(mine).max()
    else:  # int8: values next to a rounding threshold land one step away: the graph's own float32 yardstick
        yardstick = sqnr_db(ir.load(irs[key], np.float32)(x), mine)
        got = sqnr_db(theirs, mine)
        if got < yardstick - INT8_RUNTIME_MARGIN_DB and own_isa() == "AVX512_CORE_AMX":
            pytest.xfail(f"OpenVINO's AMX int8 kernels depart from the IR at batch 3, 96 px: {got:.1f} dB against a "
                         f"{yardstick:.1f} dB yardstick (docs/results/isa-matrix.md)")
        assert got >= yardstick - INT8_RUNTIME_MARGIN_DB, (got, yardstick)


def test_reshapeable_graph_adds_no_executed_node(irs, tmp_path) -> None:
    """The shape arithmetic (ShapeOf) that makes the IR reshapeable is folded by the plugin at compile time: the
    runtime graph is node for node the one of a static conversion."""
    loaded = loading.load("cloformer_xxs", "proxy", SIZE)
    with torch.no_grad():
        static = ov.convert_model(loaded.deploy(), example_input=torch.zeros(1, 3, SIZE, SIZE),
                                  input=[[1, 3, SIZE, SIZE]])
    ov.save_model(static, str(tmp_path / "static.xml"), compress_to_fp16=False)
    with pytest.raises(RuntimeError):  # what a user got before: batch 1 frozen into Reshape constants
        ov.Core().read_model(str(tmp_path / "static.xml")).reshape([8, 3, SIZE, SIZE])
    a = runtime_graph(tmp_path / "static.xml", "static", "CPU")
    b = runtime_graph(irs["proxy fp32"], "reshapeable", "CPU")
    assert abs(b.executed - a.executed) <= 2 and b.by_type.get("Reorder", 0) <= a.by_type.get("Reorder", 0) + 2


@pytest.mark.slow
def test_batch_option_writes_static_batch_irs(tmp_path) -> None:
    out = tmp_path / "b4"
    assert quantize.main(["--input-size", "32", "--subset-size", "16", "--val-limit", "24", "--benchmark-seconds", "0",
                          "--fast-bias-correction",
                          "--activation-range", "minmax", "--batch", "4", "--out", str(out)]) == 0
    for name in ("model_fp32.xml", "model_int8.xml"):
        model = ov.Core().read_model(str(out / name))
        assert list(model.input(0).get_shape()) == [4, 3, 32, 32], name
        model.reshape([1, 3, 64, 64])  # and it still reshapes
    rep = json.loads((out / "report.json").read_text())
    assert rep["model"]["batch"] == 4
    fp32_check, int8_check = [c for c in rep["fp32_checks"] if "static batch 4" in c["stage"]]
    assert fp32_check["passed"] and fp32_check["value"] <= FLOAT32_REL
    assert int8_check["passed"] and int8_check["tolerance"] > 10  # value: null when identical (SQNR inf)
    assert int8_check["value"] is None or int8_check["value"] >= int8_check["tolerance"]
    assert "[4,3,32,32]" in (out / "report.md").read_text()
    # the ISA matrix runs the batch-4 IR as shipped, AVX2 included, 4 images a request. Images fed out of
    # order or padding scored as an image would put a row near 0 dB against the graph (the batch-1 IR's NumPy run);
    # the AVX2 row measured 35.2-35.3 dB here at 32 px (on AVX2 and AMX CPUs). The native row repeats this process's
    # batch-1 measurement where the batch check found batch 4 bit-identical (as measured on both): at 32 px the AMX
    # int8 kernels depart from the graph (7.2 dB, the whole run's INT8 too), which no bound here may hide or fail on.
    rows = rep["isa_matrix"]
    assert rows[0]["isa"] == "AVX2" and rows[-1]["native"]
    for row in rows:
        assert row["kernels_as_imposed"] and row["vs_fp32"]["n"] == 24 and row["vs_graph"]["n"] > 0, row["isa"]
    assert rows[0]["vs_graph"]["sqnr_db"] >= TARGET_MIN_GRAPH_SQNR_DB - 5
    if int8_check["value"] is None:
        in_process = rep["int8_runtime_vs_graph"][0]
        assert rows[-1]["vs_graph"]["sqnr_db"] == pytest.approx(in_process["sqnr_db"], abs=0.05)
        assert rows[-1]["vs_graph"]["top1_agreement"] == pytest.approx(in_process["top1_agreement"])
    # compress.evaluate feeds a batch-4 IR 4 images a request: 10 images = 3 requests, the last one padded
    src = resolve_source("proxy-val", 32, limit=10)
    res = evaluate_openvino(out / "model_fp32.xml", src, OVRun("CPU", "f32", 2), progress=False)
    ser = openvino_predictor(out / "model_fp32.xml")(np.stack([x for x, _ in resolve_source("proxy-val", 32, 10)]))
    assert res.n == 10 and np.abs(res.logits - ser).max() <= FLOAT32_REL * np.abs(ser).max()


def test_input_size_not_multiple_of_32_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        quantize.main(["--input-size", "100", "--batch", "4"])
    assert e.value.code == 2 and "multiple of 32" in capsys.readouterr().err
