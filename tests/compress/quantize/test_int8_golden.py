"""The INT8 golden (tests/golden/int8_cloformer_xxs.npz, written by tools/make_golden.py): re-quantizing the
golden model reproduces NNCF's FakeQuantize ranges and int8 weights, the NumPy IR executor reproduces the stored
INT8 logits, and OpenVINO's INT8 output agrees with them within the measured tolerance, on the CPU's own ISA and
under ONEDNN_MAX_CPU_ISA=AVX2 (what every CPU without VNNI computes; every x86-64 CPU that runs this suite can
impose it). A pinned-version upgrade of NNCF or OpenVINO that changes INT8 numerics fails here."""

from __future__ import annotations

import numpy as np
import pytest

from compress import export, isa, runtime
from compress.metrics import sqnr_db
from compress.tolerances import (
    INT8_FQ_RTOL,
    INT8_GOLDEN_RUNTIME_MIN_DB,
    INT8_LOGIT_ATOL,
    INT8_RUNTIME_MARGIN_DB,
)
from reference_np import ir
from tools.make_golden import (
    GOLDEN_DIR,
    INT8_VARIANT,
    compare,
    fake_quantize_params,
    int8_input,
    int8_weight_params,
    quantize_golden,
    with_golden_ranges,
)

pytestmark = pytest.mark.isa_bound  # every bound here is on what oneDNN computes


@pytest.fixture(scope="module")
def gold() -> dict[str, np.ndarray]:
    with np.load(GOLDEN_DIR / f"int8_{INT8_VARIANT}.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def requantized(tmp_path_factory):
    return quantize_golden(tmp_path_factory.mktemp("int8golden"))


@pytest.fixture(scope="module")
def golden_ir(gold, requantized, tmp_path_factory):
    """The re-quantized IR with the stored ranges: the golden's graph on any CPU (its own float32 statistics move
    the ranges within INT8_FQ_RTOL, and a value next to a rounding threshold would then land one step away)."""
    q, _ = requantized
    return export.save_deployable(with_golden_ranges(q, gold), tmp_path_factory.mktemp("golden_ir") / "int8.xml")


def test_requantizing_reproduces_fake_quantize_ranges(gold, requantized) -> None:
    q, _ = requantized
    new = fake_quantize_params(q)
    assert list(new["fq_names"]) == list(gold["fq_names"]), "the quantizers moved: NNCF placed them differently"
    assert np.array_equal(new["fq_levels"], gold["fq_levels"]) and np.array_equal(new["fq_offsets"],
                                                                                  gold["fq_offsets"])
    for k in ("fq_input_low", "fq_input_high", "fq_output_low", "fq_output_high"):
        rel = np.abs(new[k] - gold[k]) / np.maximum(np.abs(gold[k]), 1e-12)
        assert rel.max() <= INT8_FQ_RTOL, (k, gold["fq_names"][np.searchsorted(gold["fq_offsets"], rel.argmax(),
                                                                                 "right") - 1])
    assert len(gold["fq_names"]) > 100


def test_requantizing_reproduces_the_int8_weights(gold, requantized) -> None:
    """NNCF's weight quantization is pinned too: every int8 weight constant bit for bit (sha256 of
    its bytes), named by the op that consumes it, and its per-channel scales."""
    q, _ = requantized
    new = int8_weight_params(q)
    assert list(new["w_names"]) == list(gold["w_names"]) and len(gold["w_names"]) > 100
    changed = [n for n, a, b in zip(gold["w_names"], gold["w_sha256"], new["w_sha256"], strict=True) if a != b]
    assert not changed, f"int8 weights changed: {changed[:3]}"
    assert np.array_equal(new["w_offsets"], gold["w_offsets"])
    assert (np.abs(new["w_scales"] - gold["w_scales"]) / np.abs(gold["w_scales"])).max() <= INT8_FQ_RTOL


def test_golden_check_fails_on_changed_int8_weights(gold) -> None:
    moved = dict(gold)
    moved["w_sha256"] = np.array(["0" * 64, *gold["w_sha256"][1:]])
    assert not compare(gold, moved, int8=True)[0]
    moved = dict(gold)
    moved["w_scales"] = gold["w_scales"] * (1 + 1e-4)
    assert not compare(gold, moved, int8=True)[0]


def test_numpy_run_of_the_new_ir_reproduces_the_stored_logits(gold, golden_ir) -> None:
    graph = ir.load(golden_ir)
    x = int8_input()
    got = np.concatenate([graph(x[i:i + 1]) for i in range(len(x))])
    assert np.abs(got - gold["logits"]).max() <= INT8_LOGIT_ATOL
    assert compare(gold, {**gold, "logits": got}, int8=True)[0]


def test_golden_ranges_are_what_the_ir_holds(gold, golden_ir) -> None:
    """with_golden_ranges really writes the stored ranges (and so a moved range cannot hide behind it)."""
    import openvino as ov

    from tools.make_golden import fake_quantize_params

    held = fake_quantize_params(ov.Core().read_model(str(golden_ir)))
    for k in ("fq_input_low", "fq_input_high", "fq_output_low", "fq_output_high"):
        assert np.array_equal(held[k].astype(np.float32), gold[k].astype(np.float32)), k


@pytest.fixture(scope="module")
def float32_yardstick(gold, golden_ir) -> float:
    """SQNR of the same INT8 graph run by NumPy in float32 against the stored float64 logits: how far
    arithmetic precision alone moves this graph's output (measured 26.0 dB on this random-weights model)."""
    graph = ir.load(golden_ir, np.float32)
    x = int8_input()
    return sqnr_db(np.concatenate([graph(x[i:i + 1]) for i in range(len(x))]), gold["logits"])


@pytest.mark.parametrize("precision", ["f32", None])
def test_openvino_int8_agrees_with_the_golden(gold, golden_ir, float32_yardstick, precision: str | None) -> None:
    """OpenVINO's CPU plugin on the same IR, in this process's ISA, departs from the graph's ideal semantics no
    more than float32 arithmetic does, less INT8_RUNTIME_MARGIN_DB (tolerances.py: a saturating kernel fails)."""
    got = runtime.run_ov(runtime.compile_ov(str(golden_ir), "CPU", precision), int8_input())[0]
    assert float32_yardstick > 20
    assert sqnr_db(got, gold["logits"]) >= float32_yardstick - INT8_RUNTIME_MARGIN_DB
    assert sqnr_db(got, gold["logits"]) >= INT8_GOLDEN_RUNTIME_MIN_DB  # the fixed floor, measured on three ISAs


@pytest.fixture(scope="module")
def avx2_row(gold, golden_ir, float32_yardstick):
    """The golden IR run in a child process under ONEDNN_MAX_CPU_ISA=AVX2 (compress.isa), against the stored
    INT8 logits and, as its FP32, the float64 golden logits of the same weights and input."""
    with np.load(GOLDEN_DIR / f"{INT8_VARIANT}.npz") as z:
        fp32 = z["logits"]
    x = int8_input()
    assert fp32.shape == gold["logits"].shape  # the INT8 golden's input is the float golden's
    (row,) = isa.isa_matrix(golden_ir, ["AVX2"], x, gold["logits"], float32_yardstick, x, fp32, None, "golden")
    return row


def test_openvino_int8_agrees_with_the_golden_under_avx2(avx2_row, float32_yardstick) -> None:
    """The same bars under AVX2, where int8 products are summed pairwise in int16 with saturation
    (the default --overflow-fix keeps the golden's weights to 7 bits, so nothing may saturate). The row really ran
    AVX2 kernels: an unset or ignored variable would show AVX-512 or AMX ones."""
    row = avx2_row
    assert row.isa == "AVX2" and row.saturating and row.kernels_as_imposed
    assert any("avx2" in k and k.lower().endswith("i8") for k in row.kernels), row.kernels
    assert row.default_precision == "f32"  # what a CPU without BF16 runs the float ops in
    for g in (row.vs_graph, row.vs_graph_default):
        assert g.sqnr_db >= float32_yardstick - INT8_RUNTIME_MARGIN_DB, (g.precision, g.sqnr_db)
        assert g.sqnr_db >= INT8_GOLDEN_RUNTIME_MIN_DB, (g.precision, g.sqnr_db)


def test_golden_check_fails_on_changed_numerics(gold) -> None:
    """The comparison make_golden --check and these tests use really fails when a range or a logit moves."""
    moved = dict(gold)
    moved["fq_input_high"] = gold["fq_input_high"] * (1 + 1e-4)
    assert not compare(gold, moved, int8=True)[0]
    moved = dict(gold)
    moved["logits"] = gold["logits"] + 1e-3
    assert not compare(gold, moved, int8=True)[0]
