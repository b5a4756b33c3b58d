"""The INT8 golden (tests/golden/int8_cloformer_xxs.npz, written by tools/make_golden.py): re-quantizing the
golden model reproduces NNCF's FakeQuantize ranges, the NumPy IR executor reproduces the stored INT8 logits,
and OpenVINO's INT8 output agrees with them within the measured tolerance. A pinned-version upgrade of NNCF or
OpenVINO that changes INT8 numerics fails here."""

from __future__ import annotations

import numpy as np
import pytest

from compress import runtime
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
)


@pytest.fixture(scope="module")
def gold() -> dict[str, np.ndarray]:
    with np.load(GOLDEN_DIR / f"int8_{INT8_VARIANT}.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def requantized(tmp_path_factory):
    return quantize_golden(tmp_path_factory.mktemp("int8golden"))


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
    """Issue 20 (14): NNCF's weight quantization is pinned too: every int8 weight constant bit for bit (sha256 of
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


def test_numpy_run_of_the_new_ir_reproduces_the_stored_logits(gold, requantized) -> None:
    _, xml = requantized
    graph = ir.load(xml)
    x = int8_input()
    got = np.concatenate([graph(x[i:i + 1]) for i in range(len(x))])
    assert np.abs(got - gold["logits"]).max() <= INT8_LOGIT_ATOL
    assert compare(gold, {**gold, "logits": got}, int8=True)[0]


@pytest.fixture(scope="module")
def float32_yardstick(gold, requantized) -> float:
    """SQNR of the same INT8 graph run by NumPy in float32 against the stored float64 logits: how far
    arithmetic precision alone moves this graph's output (measured 26.0 dB on this random-weights model)."""
    graph = ir.load(requantized[1], np.float32)
    x = int8_input()
    return sqnr_db(np.concatenate([graph(x[i:i + 1]) for i in range(len(x))]), gold["logits"])


@pytest.mark.parametrize("precision", ["f32", None])
def test_openvino_int8_agrees_with_the_golden(gold, requantized, float32_yardstick, precision: str | None) -> None:
    """OpenVINO's CPU plugin on the same IR departs from the graph's ideal semantics no more than float32
    arithmetic does, less INT8_RUNTIME_MARGIN_DB (tolerances.py: a saturating kernel, which once lost 17 dB, fails)."""
    _, xml = requantized
    got = runtime.run_ov(runtime.compile_ov(str(xml), "CPU", precision), int8_input())[0]
    assert float32_yardstick > 20
    assert sqnr_db(got, gold["logits"]) >= float32_yardstick - INT8_RUNTIME_MARGIN_DB
    assert sqnr_db(got, gold["logits"]) >= INT8_GOLDEN_RUNTIME_MIN_DB  # the fixed floor, measured on two ISAs


def test_golden_check_fails_on_changed_numerics(gold) -> None:
    """The comparison make_golden --check and these tests use really fails when a range or a logit moves."""
    moved = dict(gold)
    moved["fq_input_high"] = gold["fq_input_high"] * (1 + 1e-4)
    assert not compare(gold, moved, int8=True)[0]
    moved = dict(gold)
    moved["logits"] = gold["logits"] + 1e-3
    assert not compare(gold, moved, int8=True)[0]
