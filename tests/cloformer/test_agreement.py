"""NumPy reference <-> PyTorch twin: float64 end to end and at every named intermediate, and float32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference_np as rn
from compress.tolerances import FLOAT32_REL, FLOAT64_ATOL
from tests.helpers import ALL_VARIANTS, np_weights, test_input, torch_twin

SIZES = [(224, 224), (288, 224), (64, 64)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", ALL_VARIANTS)
def test_float64_logits_and_intermediates(name: str, size: tuple[int, int]) -> None:
    w = np_weights(name)
    x = test_input((2, 3, *size))
    ref, ref_taps = rn.forward(w, x, return_intermediates=True)
    with torch.no_grad():
        out, taps = torch_twin(name, w).forward_intermediates(torch.from_numpy(x))
    assert out.shape == (2, 1000)
    assert np.abs(out.numpy() - ref).max() <= FLOAT64_ATOL
    assert set(taps) == set(ref_taps)
    n_blocks = sum(VARIANT_DEPTHS)
    assert len(ref_taps) == 3 * n_blocks + 3  # every block, its attn and mlp; stem, norm, features
    worst = max(ref_taps, key=lambda k: np.abs(taps[k].numpy() - ref_taps[k]).max())
    assert np.abs(taps[worst].numpy() - ref_taps[worst]).max() <= FLOAT64_ATOL, worst
    # the logits must depend on the input, or agreement would prove little
    assert np.abs(ref[0] - ref[1]).max() > 1e-2


VARIANT_DEPTHS = rn.VARIANTS["cloformer_xxs"].depths


@pytest.mark.parametrize("name", ALL_VARIANTS)
@pytest.mark.isa_bound
def test_float32_relative(name: str) -> None:
    w32 = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in np_weights(name).items()}
    x = test_input((2, 3, 224, 224)).astype(np.float32)
    ref, taps = rn.forward(w32, x, return_intermediates=True)
    assert ref.dtype == np.float32 and all(t.dtype == np.float32 for t in taps.values())
    with torch.no_grad():
        out = torch_twin(name, w32, torch.float32)(torch.from_numpy(x)).numpy()
    assert np.abs(out - ref).max() <= FLOAT32_REL * np.abs(ref).max()


def test_batchnorm_statistics_are_nontrivial() -> None:
    w = np_weights("cloformer_xxs")
    for key in [k for k in w if k.endswith("running_var")]:
        assert np.abs(w[key] - 1).max() > 0.1, key
        assert np.abs(w[key.replace("running_var", "running_mean")]).max() > 0.05, key


def test_batchnorm_mistake_is_caught() -> None:
    """Ignoring the running statistics must break agreement: the test above can fail."""
    w = dict(np_weights("cloformer_xxs"))
    x = test_input((1, 3, 64, 64))
    good = rn.forward(w, x)
    w["layers.0.blocks.1.downsample.1.running_mean"] = np.zeros_like(w["layers.0.blocks.1.downsample.1.running_mean"])
    assert np.abs(rn.forward(w, x) - good).max() > 1e3 * FLOAT64_ATOL


def test_batch_independence() -> None:
    """GroupNorm is per sample: a sample's logits do not depend on its batch mates."""
    w = np_weights("cloformer_xs")
    x = test_input((3, 3, 64, 96))
    assert np.abs(rn.forward(w, x)[1:2] - rn.forward(w, x[1:2])).max() <= FLOAT64_ATOL


@pytest.mark.parametrize("where", ["attnconv", "global_attention", "mlp"])
def test_broken_torch_twin_is_caught(where: str) -> None:
    """The twin check can fail for the right reason. One sign flipped inside the torch twin (the
    local AttnConv branch, the global attention branch, or the ConvFFN of one block) must break the float64
    check that test_float64_logits_and_intermediates holds it to, at that block's tap and at the logits."""
    w = np_weights("cloformer_xxs")
    x = test_input((1, 3, 64, 64))
    ref, ref_taps = rn.forward(w, x, return_intermediates=True)
    model = torch_twin("cloformer_xxs", w)
    block = model.layers[1].blocks[0]
    owner, name = (block.mlp, "forward") if where == "mlp" else (block.attn, where)
    orig = getattr(owner, name)
    setattr(owner, name, lambda *args: -orig(*args))
    with torch.no_grad():
        out, taps = model.forward_intermediates(torch.from_numpy(x))
    tap = "layers.1.blocks.0." + ("mlp" if where == "mlp" else "attn")
    assert np.abs(taps[tap].numpy() - ref_taps[tap]).max() > 1e6 * FLOAT64_ATOL
    assert np.abs(out.numpy() - ref).max() > 1e3 * FLOAT64_ATOL
