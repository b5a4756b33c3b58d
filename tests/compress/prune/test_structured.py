"""Structured pruning keeps what its scores rank highest: hand-made scores, and importance() on a model with a
silenced unit."""

from __future__ import annotations

import numpy as np
import torch

from compress.prune import structured
from reference_np.specs import VARIANTS, plan_from_spec
from tests.helpers import np_weights, test_input, torch_twin

PLAN = plan_from_spec(VARIANTS["cloformer_xxs"])


def ranked_scores(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Distinct scores in a shuffled order, so 'the highest' is one known set per group (not the first or last
    indices, which an off-by-one or a reversed sort could also pick)."""
    rng = np.random.default_rng(seed)
    out = {}
    for i, stage in enumerate(PLAN.blocks):
        for j, b in enumerate(stage):
            z = sum(b.local_channels) + b.global_heads * b.dim_head
            out[f"layers.{i}.blocks.{j}"] = (rng.permutation(b.hidden).astype(float),
                                             rng.permutation(z).astype(float))
    return out


def highest(scores: np.ndarray, n_keep: int) -> np.ndarray:
    return np.sort(np.argsort(scores)[::-1][:n_keep])


def test_select_keeps_the_highest_scoring_channels_and_heads() -> None:
    scores = ranked_scores(3)
    removed = structured.removals(PLAN, 0.45)
    keep = structured.select(PLAN, scores, 0.45)
    heads_checked = 0
    for i, stage in enumerate(PLAN.blocks):
        for j, b in enumerate(stage):
            p = f"layers.{i}.blocks.{j}"
            ffn, z = scores[p]
            r, k = removed[p], keep[p]
            assert np.array_equal(k.hidden, highest(ffn, b.hidden - r.hidden)), p
            off = 0
            for g, c in enumerate(b.local_channels):
                assert np.array_equal(k.local[g], highest(z[off:off + c], c - r.local[g])), (p, g)
                off += c
            if b.global_heads:
                per_head = z[off:].reshape(b.global_heads, b.dim_head).sum(1)  # a head scores its channels' sum
                assert np.array_equal(k.heads, highest(per_head, b.global_heads - r.heads)), p
                heads_checked += r.heads > 0
    assert heads_checked > 0  # some block really lost heads


def test_select_ties_keep_the_earlier_unit() -> None:
    """Equal scores keep the lower index (a stable rule: the same scores prune the same units every run)."""
    flat = {p: (np.ones_like(f), np.ones_like(z)) for p, (f, z) in ranked_scores(0).items()}
    keep = structured.select(PLAN, flat, 0.45)
    b = PLAN.blocks[0][0]
    assert np.array_equal(keep["layers.0.blocks.0"].hidden, np.arange(b.hidden - structured.removals(
        PLAN, 0.45)["layers.0.blocks.0"].hidden))


def test_importance_ranks_a_silenced_channel_last() -> None:
    """A hidden FFN channel whose fc2 column is zero, a local channel and a global head whose proj columns are
    zero contribute nothing downstream: importance() scores them 0, below every live unit, and select() drops
    them first."""
    model = torch_twin("cloformer_xxs", np_weights("cloformer_xxs"), torch.float32)
    b = PLAN.blocks[2][0]
    p = "layers.2.blocks.0"
    hidden, local = 5, 3
    head = b.global_heads - 1
    z_head = sum(b.local_channels) + head * b.dim_head
    with torch.no_grad():
        blk = model.layers[2].blocks[0]
        blk.mlp.fc2.weight[:, hidden] = 0
        blk.attn.proj.weight[:, local] = 0
        blk.attn.proj.weight[:, z_head:z_head + b.dim_head] = 0
    x = [torch.from_numpy(test_input((2, 3, 64, 64), seed)).float() for seed in (1, 2)]
    scores = structured.importance(model, x)
    ffn, z = scores[p]
    assert ffn[hidden] == 0 and np.all(np.delete(ffn, hidden) > 0)
    assert z[local] == 0 and np.all(z[:b.local_channels[0]][np.arange(b.local_channels[0]) != local] > 0)
    assert np.all(z[z_head:z_head + b.dim_head] == 0)
    keep = structured.select(PLAN, scores, 0.1, head_ratio=0.25)[p]  # one of its 4 heads
    assert hidden not in keep.hidden and local not in keep.local[0] and head not in keep.heads
    assert not model.training  # importance() leaves the model as it found it
