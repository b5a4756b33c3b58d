"""Whole-model forward and head. Mirrors cloformer/model.py.

Named intermediates use the PyTorch module names, so the two can be compared key by key:
`patch_embed` (stem), `layers.i.blocks.j.attn` / `.mlp` (branch outputs before the residual add),
`layers.i.blocks.j` (block output), `norm` (head GroupNorm), `features` (pooled, pre-classifier).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .block import clo_block
from .io import cast_weights
from .ops import group_norm, linear
from .specs import ModelPlan, check_input_size, intermediate_names, plan_from_weights
from .stem import patch_embed


def head(x: np.ndarray, w: Mapping[str, np.ndarray], taps: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """GroupNorm on the full map, then global average pool, then the classifier: [B,C,h,w] -> [B,classes]."""
    x = group_norm(x, w["norm.weight"], w["norm.bias"])
    f = x.mean(axis=(2, 3))  # [B,C,h,w] -> [B,C]
    if taps is not None:
        taps["norm"], taps["features"] = x, f
    return linear(f, w["head.weight"], w["head.bias"])


def forward(weights: Mapping[str, np.ndarray], x: np.ndarray, return_intermediates: bool = False,
            plan: ModelPlan | None = None, head_dims: tuple[int, ...] | None = None,
            ) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
    """Logits of a CloFormer given official-format weights and an NCHW batch.

    Computes in x's dtype (float32 or float64); weights are cast to it once. Every width is read off the
    weights (see specs.plan_from_weights), so pruned checkpoints run unchanged.
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"input must be [B,3,H,W]; got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"input dtype must be float32 or float64; got {x.dtype}")
    check_input_size(*x.shape[2:])
    plan = plan or plan_from_weights(weights, head_dims)
    w = cast_weights({k: v for k, v in weights.items() if not k.endswith("num_batches_tracked")}, x.dtype)
    taps: dict[str, np.ndarray] | None = {} if return_intermediates else None
    x = patch_embed(x, w)  # [B,3,H,W] -> [B,C0,H/4,W/4]
    if taps is not None:
        taps["patch_embed"] = x
    for i, stage in enumerate(plan.blocks):
        for j, block in enumerate(stage):
            x = clo_block(x, w, f"layers.{i}.blocks.{j}.", block, taps)
            if taps is not None:
                taps[f"layers.{i}.blocks.{j}"] = x
    logits = head(x, w, taps)
    if taps is not None:
        assert list(taps) == intermediate_names(plan), "tap names drifted from specs.intermediate_names"
    return (logits, taps) if taps is not None else logits
