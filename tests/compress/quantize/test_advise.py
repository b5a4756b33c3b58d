"""--advise: quantizer groups named after the blocks they serve, a group put back in float exactly, fallbacks that
NNCF's ignored scope reaches, candidates judged by SQNR, agreement and executed nodes, and a command line that
reproduces the kept settings without searching."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import openvino as ov
import pytest

from compress import export as E
from compress import loading
from compress.data import Images, proxy
from compress.int8 import advise, ptq
from compress.metrics import sqnr_db
from compress.report import FixTried
from compress.settings import QuantSettings

FAST = QuantSettings(subset_size=16, activation_range="minmax", fast_bias_correction=True)


@pytest.mark.parametrize("consumers,group", [
    (["__module.model.layers.0.1.attn.qkvs.0/aten::_convolution/Convolution"], "layers.0.blocks.1.attn"),
    (["__module.model.layers.2.4.mlp.fc1/aten::_convolution/Convolution"], "layers.2.blocks.4.mlp"),
    (["__module.model.layers.3.0/aten::add/Add"], "layers.3.blocks.0"),
    (["__module.model.layers.1.1/aten::layer_norm/MVN",  # a norm feeding the attention is the attention's
      "__module.model.layers.1.1.attn.global_kv/aten::_convolution/Convolution"], "layers.1.blocks.1.attn"),
    (["__module.model.head/aten::linear/MatMul"], "head"),
    (["__module.model.norm/aten::layer_norm/MVN"], "other"),
])
def test_a_quantizer_belongs_to_the_block_branch_its_consumers_are_in(consumers, group) -> None:
    assert advise.group_of(consumers) == group


def test_a_fallback_pattern_reaches_its_group_and_no_other() -> None:
    e = advise.fallback_entry("layers.2.blocks.1.mlp")
    assert e.kind == "pattern"
    hit = re.compile(e.value).fullmatch
    assert hit("__module.model.layers.2.1.mlp.fc1/aten::_convolution/Convolution")
    assert not hit("__module.model.layers.2.11.mlp.fc1/aten::_convolution/Convolution")
    assert not hit("__module.model.layers.2.1.attn.proj/aten::_convolution/Convolution")
    assert not hit("__module.model.layers.12.1.mlp.fc1/aten::_convolution/Convolution")
    own = re.compile(advise.fallback_entry("layers.2.blocks.1").value).fullmatch  # the block's norms and sums only
    assert own("__module.model.layers.2.1/aten::add/Add")
    assert not own("__module.model.layers.2.1.mlp.fc1/aten::_convolution/Convolution")


def test_candidates_say_the_options_that_reproduce_them() -> None:
    tried = advise.candidates(FAST, ["layers.2.blocks.4.mlp", "other", "layers.0.blocks.1.attn"])
    n_eq, n_sq = len(advise.EQUALISE_ALPHAS), len(advise.SMOOTH_QUANT_ALPHAS)
    assert [c.name for c in tried[:n_eq]] == [f"equalisation alpha {a:g}" for a in advise.EQUALISE_ALPHAS]
    assert tried[0].command == f"--equalise-alpha {advise.EQUALISE_ALPHAS[0]:g}"
    assert [c.name for c in tried[n_eq:n_eq + n_sq]] == [f"SmoothQuant alpha {a:g}" for a in advise.SMOOTH_QUANT_ALPHAS]
    assert tried[n_eq].command == "--model-type transformer --smooth-quant-alpha 0.15"
    fallbacks = tried[n_eq + n_sq:]
    assert [c.name for c in fallbacks] == ["float fallback of layers.2.blocks.4.mlp",
                                           "float fallback of layers.2.blocks.4.mlp, layers.0.blocks.1.attn"]
    assert fallbacks[1].settings.ignored_scope[:len(FAST.ignored_scope)] == FAST.ignored_scope  # appended
    assert fallbacks[1].command.count("--ignored-scope") == len(FAST.ignored_scope) + 2


def test_settings_that_equalise_already_get_no_equalisation_candidate() -> None:
    tried = advise.candidates(replace(FAST, equalise_alpha=0.5), [])
    assert not any(c.settings.equalise_alpha != 0.5 for c in tried) and "equalisation" not in tried[0].name


@pytest.mark.parametrize("sqnr,agreement,executed,kept", [
    (35.0, 99.0, 300, True), (35.0, 99.0, 307, False),  # 2% more nodes at most
    (35.0, 98.9, 300, False), (33.0, 99.5, 300, False),
])
def test_a_fix_is_kept_only_with_more_sqnr_no_lower_agreement_and_few_more_nodes(sqnr, agreement, executed,
                                                                                  kept) -> None:
    base = FixTried("base", FAST, "", 33.0, 99.0, 300)
    c = FixTried("c", FAST, "", sqnr, agreement, executed)
    assert advise.verdict(c, base).startswith("+") == kept


def test_the_reproducing_command_drops_the_search_and_adds_the_options() -> None:
    got = advise.reproduce("python -m compress.quantize --advise --advise-seconds 300 --calib 'my data' "
                           "--advise-seconds=10", "--ignored-scope 'pattern:.*x.*'")
    assert got == "python -m compress.quantize --calib 'my data' --ignored-scope 'pattern:.*x.*'"


@pytest.fixture(scope="module")
def irs(tmp_path_factory):
    """The proxy at 32 px, exported and quantized with fast settings: (FP32 IR, INT8 IR, 16 held-out crops)."""
    loaded = loading.load("cloformer_xxs", "proxy", 32)
    folder = tmp_path_factory.mktemp("advise")
    exported = E.export(loaded, folder)
    calib = list(Images.of(proxy.sample_source(32).subset(16)).xs[:, None])
    int8 = folder / "model_int8.xml"
    E.save_deployable(ptq.quantize(exported.taps_model, calib, FAST), int8)
    return exported.fp32_xml, int8, Images.of(proxy.val_source(32).subset(16)).xs


def test_every_group_back_in_float_is_the_fp32_ir_and_none_is_the_int8_ir(irs) -> None:
    fp32_xml, int8_xml, x = irs
    fp32 = advise.run_f32(ov.Core().read_model(str(fp32_xml)), x)
    int8 = advise.run_f32(ov.Core().read_model(str(int8_xml)), x)
    groups = set(advise.quantizer_groups(ov.Core().read_model(str(int8_xml))))
    assert {g for g in groups if g.startswith("layers.")} and "head" in groups
    int8_model, fp32_model = (ov.Core().read_model(str(p)) for p in (int8_xml, fp32_xml))
    none = advise.run_f32(advise.in_float(int8_model, fp32_model, set()), x)
    assert np.array_equal(none, int8)
    every = advise.run_f32(advise.in_float(int8_model, fp32_model, groups), x)
    # what stays of INT8: the corrected biases of bias correction, about 40 dB; INT8 itself is far below
    assert sqnr_db(every, fp32) >= sqnr_db(int8, fp32) + 10 and sqnr_db(every, fp32) >= 35


def test_the_fallback_of_a_group_reaches_nncf_and_keeps_its_ops_in_float(irs, tmp_path) -> None:
    """The ignored-scope pattern matches nodes of the converted graph (NNCF refuses one that does not) and leaves
    that branch without a FakeQuantize."""
    loaded = loading.load("cloformer_xxs", "proxy", 32)
    taps = E.convert_deploy(loaded, taps=True)
    settings = replace(FAST, ignored_scope=(*FAST.ignored_scope, advise.fallback_entry("layers.1.blocks.0.mlp")))
    ptq.check_ignored_scope(taps, settings)
    calib = list(Images.of(proxy.sample_source(32).subset(16)).xs[:, None])
    groups = advise.quantizer_groups(ptq.quantize(taps, calib, settings))
    assert "layers.1.blocks.0.mlp" not in groups and "layers.1.blocks.1.mlp" in groups
