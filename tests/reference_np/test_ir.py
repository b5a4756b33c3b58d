"""reference_np.ir: each op against a direct NumPy formulation on edge cases, whole IRs against the NumPy
reference, and clear errors for unknown ops and broken files."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from reference_np import ir
from reference_np.ir import IRError, conv2d, fake_quantize


# ------------------------------------------------------------------ FakeQuantize
def fq_direct(x: float, il: float, ih: float, ol: float, oh: float, levels: int) -> float:
    """The spec's expression for one element, in Python floats, rounding half to even (nearbyint)."""
    if x <= min(il, ih):
        return ol
    if x > max(il, ih):
        return oh
    return round((x - il) / (ih - il) * (levels - 1)) / (levels - 1) * (oh - ol) + ol  # round(): half to even


@pytest.mark.parametrize("levels", [255, 256])
def test_fake_quantize_range_ends_and_ties(levels: int) -> None:
    il, ih, ol, oh = -1.0, 1.0, -1.0, 1.0
    xs = np.array([-5, il, il + 1e-12, ih - 1e-12, ih, ih + 1e-12, 5, 0.0, -0.3, 0.7])
    got = fake_quantize(xs, il, ih, ol, oh, levels)
    assert np.array_equal(got, [fq_direct(float(v), il, ih, ol, oh, levels) for v in xs])
    assert got[0] == ol and got[1] == ol and got[4] == oh and got[5] == oh  # x <= il -> ol; x > ih -> oh
    assert got[2] == ol and got[3] == oh  # inside the range next to its ends: the end levels


@pytest.mark.parametrize("levels", [255, 256])
def test_fake_quantize_rounds_ties_to_even(levels: int) -> None:
    """With input range [0, levels - 1] the scaled value (x - il) / (ih - il) * (levels - 1) is exactly
    x for these x = k + 0.5, so each is a true tie: k + 0.5 goes to the even neighbour."""
    il, ih = 0.0, float(levels - 1)
    ties = [k + 0.5 for k in range(12) if (k + 0.5 - il) / (ih - il) * (levels - 1) == k + 0.5]
    assert len(ties) >= 6
    got = fake_quantize(np.array(ties), il, ih, il, ih, levels)
    assert list(got) == [2 * round(t / 2) for t in ties] == [float(np.rint(t)) for t in ties]
    assert all(int(g) % 2 == 0 for g in got)


def test_fake_quantize_per_channel_ranges_and_output_mapping() -> None:
    """Per-channel input ranges [1,C,1,1] broadcast over NCHW; output range unlike the input range (u8 grid)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 5)) * 3
    il = np.array([-1.0, -2.0, -0.5]).reshape(1, 3, 1, 1)
    ih = np.array([1.0, 3.0, 0.25]).reshape(1, 3, 1, 1)
    ol, oh = 0.0, 255.0
    got = fake_quantize(x, il, ih, ol, oh, 256)
    for idx in np.ndindex(x.shape):
        c = idx[1]
        assert got[idx] == fq_direct(x[idx], il[0, c, 0, 0], ih[0, c, 0, 0], ol, oh, 256)
    assert set(np.unique(got)) <= set(np.arange(256.0))


# ------------------------------------------------------------------ convolution
def conv_direct(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], pads: tuple[int, int, int, int],
                groups: int) -> np.ndarray:
    """Loops straight from the definition: out[b,o,i,j] = sum_{c,u,v} xpad[b, g*cg + c, i*s + u, j*s + v] w[o,c,u,v]."""
    b, _, h, wd = x.shape
    cout, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    ho, wo = (h + pads[0] + pads[2] - kh) // stride[0] + 1, (wd + pads[1] + pads[3] - kw) // stride[1] + 1
    og = cout // groups
    out = np.zeros((b, cout, ho, wo))
    for o in range(cout):
        g = o // og
        for i in range(ho):
            for j in range(wo):
                patch = xp[:, g * cg:(g + 1) * cg, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw]
                out[:, o, i, j] = np.sum(patch * w[o], axis=(1, 2, 3))
    return out


@pytest.mark.parametrize("groups,k,stride,pads", [(1, 3, (2, 2), (1, 1, 1, 1)), (6, 5, (2, 2), (2, 2, 2, 2)),
                                                  (6, 3, (1, 1), (1, 0, 2, 1)), (2, 1, (1, 1), (0, 0, 0, 0)),
                                                  (3, 4, (4, 4), (0, 0, 0, 0)), (1, 1, (1, 1), (0, 0, 0, 0))])
def test_grouped_convolution_with_pads_and_strides(groups: int, k: int, stride: tuple[int, int],
                                                   pads: tuple[int, int, int, int]) -> None:
    rng = np.random.default_rng(k)
    x = rng.standard_normal((2, 6, 9, 8))
    w = rng.standard_normal((6 if groups > 1 else 4, 6 // groups, k, k))
    got = conv2d(x, w.reshape(groups, -1, *w.shape[1:]), list(stride), list(pads[:2]), list(pads[2:]), [1, 1], groups)
    assert np.abs(got - conv_direct(x, w, stride, pads, groups)).max() <= 1e-12


# ------------------------------------------------------------------ MVN and others
@pytest.mark.parametrize("mode", ["inside_sqrt", "outside_sqrt"])
def test_mvn_eps_modes(mode: str) -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 4)) * 0.01  # small variance: eps placement matters
    eps = 1e-3
    attrs = {"eps": str(eps), "eps_mode": mode, "normalize_variance": "true"}
    got = ir.run_op("MVN", "opset6", attrs, x, np.array([1, 2, 3]))
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(1, 2, 3), keepdims=True)
    want = (x - mean) / (np.sqrt(var + eps) if mode == "inside_sqrt" else np.sqrt(var) + eps)
    assert np.abs(got - want).max() <= 1e-12
    other = ir.run_op("MVN", "opset6", {**attrs, "eps_mode": {"inside_sqrt": "outside_sqrt",
                      "outside_sqrt": "inside_sqrt"}[mode]}, x, np.array([1, 2, 3]))
    assert np.abs(got - other).max() > 1e-2  # the two modes really differ here


def test_sdpa_softmax_gelu_swish_against_formulas() -> None:
    rng = np.random.default_rng(2)
    q, k, v = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((1, 2, 3, 4)), rng.standard_normal((1, 2, 3, 4))
    sdpa = {"causal": "false"}
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(4)
    p = np.exp(s) / np.exp(s).sum(-1, keepdims=True)
    assert np.abs(ir.run_op("ScaledDotProductAttention", "opset13", sdpa, q, k, v) - p @ v).max() <= 1e-12
    assert np.abs(ir.run_op("ScaledDotProductAttention", "opset13", sdpa, q, k, v, None,
                            np.array(0.5))
                  - (np.exp(s * 2 * 0.5) / np.exp(s * 2 * 0.5).sum(-1, keepdims=True)) @ v).max() <= 1e-12
    x = np.array([-800.0, -3.0, 0.0, 2.0, 800.0])
    with np.errstate(over="raise"):  # stable: no overflow warning for large negative inputs
        sw = ir.run_op("Swish", "opset4", {}, x)
    assert np.allclose(sw, [0.0, -3 / (1 + math.exp(3)), 0.0, 2 / (1 + math.exp(-2)), 800.0])
    g = ir.run_op("Gelu", "opset7", {"approximation_mode": "ERF"}, x[1:4])
    assert np.allclose(g, [0.5 * t * (1 + math.erf(t / math.sqrt(2))) for t in x[1:4]], atol=1e-15)


# ------------------------------------------------------------------ whole IRs and errors
@pytest.fixture(scope="module")
def small_ir(tmp_path_factory):
    """A tiny IR written by OpenVINO (this test may import it; reference_np.ir itself never does)."""
    import openvino as ov
    import openvino.opset13 as ops

    d = tmp_path_factory.mktemp("ir")
    p = ops.parameter([1, 2, 4, 4], np.float32, name="x")
    w = ops.constant(np.random.default_rng(3).standard_normal((3, 2, 3, 3)).astype(np.float32))
    conv = ops.convolution(p, w, [1, 1], [1, 1], [1, 1], [1, 1], name="conv")
    fq = ops.fake_quantize(conv, -1.0, 1.0, -1.0, 1.0, 256, name="fq")
    out = ops.relu(fq, name="relu")
    ov.save_model(ov.Model([out], [p]), str(d / "m.xml"), compress_to_fp16=False)
    x = np.random.default_rng(4).standard_normal((1, 2, 4, 4)).astype(np.float32)
    ref = ov.Core().compile_model(str(d / "m.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)[0]
    return d / "m.xml", x, ref


def test_small_ir_matches_openvino(small_ir) -> None:
    xml, x, ref = small_ir
    g = ir.load(xml)
    got = g(x)
    assert got.dtype == np.float64 and got.shape == (1, 3, 4, 4)
    assert np.abs(got - ref).max() <= 2 / 255 * 0.51  # at most half a step where f32 and f64 round differently
    assert np.mean(np.abs(got - ref) < 1e-6) > 0.95
    taps = g.run(x, outputs=["conv", "fq"])
    assert set(taps) == {"conv", "fq"} and np.abs(taps["fq"] - np.clip(taps["fq"], -1, 1)).max() == 0
    with pytest.raises(KeyError, match="no tensor or node named nope"):
        g.run(x, outputs=["nope"])
    with pytest.raises(ValueError, match=r"input must have shape \[1,2,4,4\] \(batch and size free\)"):
        g(np.zeros((1, 3, 4, 4)))  # the channels are the file's
    with pytest.raises(ValueError, match="input must have shape"):
        g(np.zeros((2, 4, 4)))  # and so is the rank
    two = np.concatenate([x, x[:, :, ::-1]])  # batch and size are the input's (the IR's shapes come from ShapeOf)
    assert np.array_equal(g(two)[:1], got) and g(np.zeros((2, 2, 8, 8))).shape == (2, 3, 8, 8)


def test_unknown_op_or_version_is_refused_at_load(small_ir, tmp_path) -> None:
    """Ops are registered by (type, version) and every node is checked when the graph loads, not when
    (or if) a run reaches it."""
    xml, _, _ = small_ir
    for name, old, new, message in (
            ("u", 'type="ReLU"', 'type="Frobnicate"', r"u\.xml: op types reference_np.ir does not implement: "
                                                       r"Frobnicate \(opset1\)"),
            ("v", 'type="FakeQuantize" version="opset1"', 'type="FakeQuantize" version="opset99"',
             r"does not implement: FakeQuantize \(opset99\)")):
        assert old in xml.read_text()
        (tmp_path / f"{name}.xml").write_text(xml.read_text().replace(old, new))
        shutil.copy(xml.with_suffix(".bin"), tmp_path / f"{name}.bin")
        with pytest.raises(IRError, match=message):
            ir.load(tmp_path / f"{name}.xml")


def test_unsupported_attribute_is_refused_at_load(small_ir, tmp_path) -> None:
    xml, _, _ = small_ir
    (tmp_path / "a.xml").write_text(xml.read_text().replace('auto_pad="explicit"', 'auto_pad="same_upper"'))
    shutil.copy(xml.with_suffix(".bin"), tmp_path / "a.bin")
    with pytest.raises(IRError, match=r"a\.xml: Convolution node 'conv': auto_pad=same_upper is not supported"):
        ir.load(tmp_path / "a.xml")
    (tmp_path / "a.xml").write_text(xml.read_text().replace('levels="256"', 'levels="many"'))
    with pytest.raises(IRError, match=r"FakeQuantize node 'fq': attribute levels='many' cannot be read"):
        ir.load(tmp_path / "a.xml")


def test_attributes_are_typed_once_and_overrides_go_through_load(small_ir) -> None:
    xml, x, _ = small_ir
    g = ir.load(xml)
    conv = next(n for n in g.nodes.values() if n.type == "Convolution")
    assert conv.a["strides"] == [1, 1] and conv.a["auto_pad"] == "explicit"  # typed, not text
    fq = next(n for n in g.nodes.values() if n.type == "FakeQuantize")
    assert fq.a["levels"] == 256
    coarse = ir.load(xml, overrides={"fq": {"levels": "3"}})  # by node name
    assert next(n for n in coarse.nodes.values() if n.name == "fq").a["levels"] == 3
    assert set(np.unique(np.round(coarse.run(x, ["fq"])["fq"], 12))) <= {-1.0, 0.0, 1.0}
    assert np.abs(ir.load(xml, overrides={"FakeQuantize": {"levels": "3"}})(x) - coarse(x)).max() == 0  # by type
    with pytest.raises(IRError, match="overrides name no node or op type of the graph: Nope"):
        ir.load(xml, overrides={"Nope": {"eps": "1"}})


def test_a_numpy_error_inside_an_op_names_the_node(small_ir, tmp_path) -> None:
    xml, x, _ = small_ir
    g = ir.load(xml)
    conv = next(n for n in g.nodes.values() if n.type == "Convolution")
    conv.a["strides"] = [1]  # as a graph with a malformed attribute would reach the op
    with pytest.raises(IRError, match=r"m\.xml: Convolution \(opset1\) node 'conv' failed on inputs \[1, 2, 4, 4\]"):
        g(x)


def test_truncated_or_missing_bin_is_an_error(small_ir, tmp_path) -> None:
    xml, _, _ = small_ir
    shutil.copy(xml, tmp_path / "t.xml")
    (tmp_path / "t.bin").write_bytes(xml.with_suffix(".bin").read_bytes()[:50])
    with pytest.raises(IRError, match=r"t\.bin is truncated: Const '.*' needs bytes"):
        ir.load(tmp_path / "t.xml")
    (tmp_path / "t.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"no weights file t\.bin"):
        ir.load(tmp_path / "t.xml")
    with pytest.raises(FileNotFoundError, match="IR not found"):
        ir.load(tmp_path / "missing.xml")
    (tmp_path / "bad.xml").write_text("<net><layers>")
    with pytest.raises(IRError, match="not valid XML"):
        ir.load(tmp_path / "bad.xml")


def test_corrupted_bin_is_an_error_not_garbage(small_ir, tmp_path) -> None:
    xml, _, _ = small_ir
    shutil.copy(xml, tmp_path / "c.xml")
    blob = bytearray(xml.with_suffix(".bin").read_bytes())
    blob[0:8] = b"\xff" * 8  # two float32 NaNs in the first constant
    (tmp_path / "c.bin").write_bytes(bytes(blob))
    with pytest.raises(IRError, match=r"c\.bin is corrupted: Const .* holds 2 NaN/Inf values"):
        ir.load(tmp_path / "c.xml")


# ------------------------------------------------------------------ every route, every variant
@pytest.mark.parametrize("name", ["cloformer_xxs", "cloformer_xs", "cloformer_s", "cloformer_global",
                                  "cloformer_no_global", "pruned"])
def test_float64_deploy_ir_run_by_numpy_equals_the_reference(tmp_path, name: str) -> None:
    """The deploy graph exported with float64 constants and run by reference_np.ir reproduces
    reference_np.forward to 1e-10: every variant and a pruned checkpoint, at 64x64."""
    import reference_np as rn
    from compress import export, loading
    from compress.prune import structured
    from compress.tolerances import FLOAT64_ATOL
    from reference_np.specs import VARIANTS, plan_from_spec
    from tests.helpers import np_weights, random_scores, test_input

    variant = "cloformer_xxs" if name == "pruned" else name
    w = np_weights(variant)
    if name == "pruned":
        plan = plan_from_spec(VARIANTS[variant])
        w = structured.slice_weights(w, plan, structured.select(plan, random_scores(plan, 6), 0.45, 16))
    path = rn.save_weights(rn.cast_weights(w, np.float32), tmp_path / "w.safetensors")
    loaded = loading.load(variant, path, 64)
    graph = ir.load(export.convert_deploy_float64(loaded, tmp_path / "d.xml"))
    x = test_input((1, 3, 64, 64))
    ref = rn.forward(rn.cast_weights(loaded.weights), x)
    assert np.abs(graph(x) - ref).max() <= FLOAT64_ATOL
    assert np.abs(ref).max() > 1e-2


@pytest.mark.parametrize("route", ["onnx", "plain", pytest.param("int8", marks=pytest.mark.slow)])
def test_other_routes_run_by_numpy(tmp_path, route: str) -> None:
    """The ONNX route (GroupNormalization, AvgPool, shape arithmetic), the plain PyTorch-frontend route and an INT8
    IR (FakeQuantize, i8 weights with Convert/Subtract/Multiply decompression) all run, matching OpenVINO
    (f32 hint): FP32 routes to 1e-5 relative, the INT8 IR to 30 dB logit SQNR and the same top-1."""
    import openvino as ov

    from compress import export, loading, runtime
    from compress.data.sources import resolve_source
    from compress.int8 import ptq
    from compress.int8 import steps as quantization
    from compress.metrics import rel_max, sqnr_db
    from compress.settings import QuantSettings
    from tests.helpers import QUICK_QUANT

    loaded = loading.load("cloformer_xxs", "proxy", 64)
    x = np.stack([x for x, _ in resolve_source("proxy-val", 64).subset(2)])
    if route == "onnx":
        exported = export.export(loaded, tmp_path)
        model = ov.convert_model(str(exported.onnx_path))
    elif route == "plain":
        model = export.convert_plain(loaded)
    else:
        exported = export.export(loaded, tmp_path)
        calib = quantization.calibration_data(resolve_source("sample", 64).subset(16))
        model = export.single_output(ptq.quantize(exported.taps_model, calib, QuantSettings(subset_size=16,
                                                                                         **QUICK_QUANT)))
    ov.save_model(model, str(tmp_path / "m.xml"), compress_to_fp16=False)
    types = {op.get_type_name() for op in model.get_ops()}
    graph = ir.load(tmp_path / "m.xml")
    got = np.concatenate([graph(x[i:i + 1]) for i in range(len(x))])
    want = runtime.run_ov(runtime.compile_ov(str(tmp_path / "m.xml"), "CPU", "f32"), x)[0]
    if route == "int8":
        assert {"FakeQuantize", "Convert", "Multiply"} <= types
        # measured 35.0 dB on these two images; 37.8 dB over all of proxy-val (tools.check_int8_ir)
        assert sqnr_db(want, got) >= 30.0 and np.array_equal(np.argmax(want, 1), np.argmax(got, 1))
    else:
        assert rel_max(got, want) <= 1e-5
        assert "AvgPool" in types and types & {"GroupNormalization", "MVN"}  # the training form's ops
