"""compress.profile: MACs read off an IR's ops (counted by hand here), a profile that adds up (nodes by type and by
stage are the executed nodes), its place in the report, and tools.profile's refusals."""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from compress.plain import from_plain, to_plain
from compress.profile import Profile, ir_macs, is_int8, profile_ir, stage_of
from compress.render import profile_lines
from tools import profile as profile_tool


def small_model() -> ov.Model:
    """stem conv 3x3 (8 -> 4 channels, 16x16), a depthwise 3x3, then a MatMul [16, 64] x [64, 5]: MACs by hand."""
    rng = np.random.default_rng(0)
    x = ops.parameter([1, 8, 16, 16], np.float32, name="x")
    conv = ops.convolution(x, ops.constant(rng.standard_normal((4, 8, 3, 3)).astype(np.float32)), [1, 1], [1, 1],
                           [1, 1], [1, 1])
    conv.set_friendly_name("stem.conv")
    dw = ops.group_convolution(conv, ops.constant(rng.standard_normal((4, 1, 1, 3, 3)).astype(np.float32)), [1, 1],
                               [1, 1], [1, 1], [1, 1])
    dw.set_friendly_name("layers.1.dw")
    flat = ops.reshape(dw, ops.constant(np.array([16, 64], np.int64)), False)
    mm = ops.matmul(flat, ops.constant(rng.standard_normal((64, 5)).astype(np.float32)), False, False)
    mm.set_friendly_name("layers.2.fc")
    return ov.Model([mm], [x], "small")


CONV_MACS = 4 * 16 * 16 * 8 * 3 * 3  # out channels x positions x (in channels x kernel)
DW_MACS = 4 * 16 * 16 * 3 * 3  # one input channel per output channel
MM_MACS = 16 * 5 * 64


def test_macs_are_read_off_the_ops() -> None:
    assert ir_macs(small_model()) == CONV_MACS + DW_MACS + MM_MACS


def test_a_profile_adds_up_and_round_trips() -> None:
    p = profile_ir(small_model(), runs=3, warmup=1)
    assert p.runs == 3 and p.nodes > 0 and p.macs == CONV_MACS + DW_MACS + MM_MACS
    assert sum(t.nodes for t in p.by_type) == p.nodes
    assert sum(s.int8_nodes + s.float_nodes for s in p.by_stage) == p.nodes
    assert {s.stage for s in p.by_stage} <= {"stem", "layers.1", "layers.2", "head"}
    assert all(s.int8_nodes == 0 for s in p.by_stage)  # no FakeQuantize: no int8 kernel
    assert set(p.peak_gmacs) == {"float"} and p.peak_gmacs["float"] > 0
    assert p.bound_ms == pytest.approx(p.macs / (p.peak_gmacs["float"] * 1e9) * 1e3, rel=1e-3, abs=1e-4)
    assert p.wall_ms > 0 and p.bound_ratio == pytest.approx(p.wall_ms / p.bound_ms)
    assert from_plain(Profile, to_plain(p)) == p
    text = "\n".join(profile_lines(p))
    assert "Verdict: " in text and "| node type | nodes | ms | µs a node |" in text


def test_stage_and_int8_kernel_names() -> None:
    assert stage_of("__module.layers.3.1.attn.qkvs.0/aten::_convolution/Convolution") == "layers.3"
    assert stage_of("__module.stem.0/aten::_convolution/Convolution") == "stem"
    assert stage_of("__module.head/aten::linear/MatMul") == "head"
    assert is_int8("brgconv_avx512_amx_I8") and is_int8("jit_avx2_U8")
    assert not is_int8("brgconv_avx512_amx_bf16") and not is_int8("jit_avx512_FP32")


def test_tools_profile_refuses_a_missing_ir(tmp_path, capsys) -> None:
    assert profile_tool.main([str(tmp_path / "none.xml")]) == 2
    assert "no such IR" in capsys.readouterr().err
