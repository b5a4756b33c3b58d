"""Depth pruning: a removed block is the identity of the residual stream, in NumPy and torch alike; the model and
the reference read the depth off the weights; the greedy choice takes the block whose absence costs least; bad
requests are refused with the blocks named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cloformer
import reference_np as rn
from cloformer.checkpoint import CheckpointMismatchError
from compress.errors import InputError
from compress.prune import depth
from compress.settings import PruneSettings
from compress.tolerances import FLOAT64_ATOL
from reference_np.specs import VARIANTS, plan_from_spec, plan_from_weights
from tests.helpers import np_weights, test_input, to_torch

XXS = plan_from_spec(VARIANTS["cloformer_xxs"])


def silenced(w: dict[str, np.ndarray], blocks: list[depth.Block]) -> dict[str, np.ndarray]:
    """The whole network with `blocks`' two branches outputting zero: the residual stream passes them unchanged."""
    w = {k: v.copy() for k, v in w.items()}
    for b in blocks:
        for key in ("attn.proj.weight", "attn.proj.bias", "mlp.fc2.weight", "mlp.fc2.bias"):
            w[f"{depth.name(b)}.{key}"][...] = 0
    return w


def test_the_removable_blocks_are_the_stride_one_blocks_before_each_stages_last() -> None:
    assert depth.removable(XXS) == [(0, 0), (1, 0), (2, 0), (2, 1), (2, 2), (2, 3), (2, 4), (3, 0)]


@pytest.mark.parametrize("name,blocks", [("cloformer_xxs", [(2, 1), (2, 3)]),
                                         ("cloformer_xxs", [(0, 0), (3, 0)]),
                                         ("cloformer_s", [(2, 0), (2, 4), (1, 0)])])
def test_dropping_blocks_equals_silencing_them_and_the_twins_hold(name, blocks) -> None:
    w = np_weights(name)
    dropped = depth.drop_blocks(w, blocks)
    x = test_input((2, 3, 64, 64))
    ref = rn.forward(dropped, x)
    assert np.abs(ref - rn.forward(silenced(w, blocks), x)).max() <= FLOAT64_ATOL
    plan = plan_from_weights(dropped, VARIANTS[name].head_dims)  # the depth, read back off the keys
    full = plan_from_spec(VARIANTS[name])
    for i, stage in enumerate(plan.blocks):
        assert len(stage) == len(full.blocks[i]) - sum(1 for s, _ in blocks if s == i)
        assert stage[-1] == full.blocks[i][-1]  # the downsampling block stays, renumbered
    model = cloformer.CloFormer(plan).double().eval()
    model.load_state_dict(to_torch(dropped), strict=True)
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    assert np.abs(got - ref).max() <= FLOAT64_ATOL


def test_bypassing_in_torch_is_the_dropped_model_and_is_undone_after() -> None:
    w = np_weights("cloformer_xxs")
    model = cloformer.CloFormer(XXS).double().eval()
    model.load_state_dict(to_torch(w), strict=True)
    blocks = [(2, 2), (1, 0)]
    dropped = depth.drop_blocks(w, blocks)
    small = cloformer.CloFormer(plan_from_weights(dropped, VARIANTS["cloformer_xxs"].head_dims)).double().eval()
    small.load_state_dict(to_torch(dropped), strict=True)  # (cast first: loading copies into the params' dtype)
    x = torch.from_numpy(test_input((1, 3, 64, 64)))
    with torch.no_grad():
        before = model(x)
        with depth.bypassed(model, blocks):
            assert torch.abs(model(x) - small(x)).max() <= FLOAT64_ATOL
        assert torch.equal(model(x), before)


def test_the_greedy_choice_takes_the_block_that_costs_nothing_first() -> None:
    w = silenced(np_weights("cloformer_xxs"), [(2, 3)])  # layers.2.blocks.3 is already the identity
    model = cloformer.CloFormer(XXS).eval()
    model.load_state_dict({k: v.float() for k, v in to_torch(w).items()}, strict=True)
    x = [torch.from_numpy(test_input((4, 3, 64, 64))).float()]
    chosen, losses = depth.choose_blocks(model, 2, x)
    assert chosen[0] == (2, 3) and losses["layers.2.blocks.3"] <= 1e-8
    assert chosen[1] != (2, 3) and losses[depth.name(chosen[1])] > losses["layers.2.blocks.3"]


def test_too_many_blocks_are_refused_naming_the_removable_ones() -> None:
    with pytest.raises(InputError, match=r"8 removable blocks .*layers\.3\.blocks\.0"):
        depth.check_depth(XXS, 9)


@pytest.mark.parametrize("kwargs,message", [({"method": "depth"}, "depth >= 1"),
                                            ({"method": "nncf-magnitude", "depth": 2}, "'structured' and 'depth'"),
                                            ({"depth": -1}, "depth")])
def test_depth_settings_are_checked(kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        PruneSettings(**kwargs)


def test_a_depth_pruned_checkpoint_loads_and_a_stage_without_its_last_block_does_not(tmp_path) -> None:
    w = np_weights("cloformer_xxs")
    ok = rn.save_weights(depth.drop_blocks(w, [(2, 0), (2, 1)]), tmp_path / "ok.safetensors")
    model = cloformer.create_model("cloformer_xxs", checkpoint=str(ok), allow_pruned=True)
    assert [len(s) for s in model.plan.blocks] == [2, 2, 4, 2]
    bad = rn.save_weights(depth.drop_blocks(w, [(2, 5)]), tmp_path / "bad.safetensors")  # the downsampling block
    with pytest.raises(CheckpointMismatchError, match="depths"):
        cloformer.create_model("cloformer_xxs", checkpoint=str(bad), allow_pruned=True)
