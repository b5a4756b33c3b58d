"""Clo block (EfficientBlock): pre-norm attention and ConvFFN residuals; a transition block also
downsamples its skip with a dense 5x5 stride-2 conv, BN and a 1x1 conv. Mirrors cloformer/block.py."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .attention import efficient_attention
from .convffn import convffn
from .ops import batch_norm, conv2d, group_norm, pointwise
from .specs import BlockPlan


def downsample(x: np.ndarray, w: Mapping[str, np.ndarray], p: str) -> np.ndarray:
    """Transition skip: [B,C,H,W] -> [B,C',H/2,W/2], no activation."""
    x = conv2d(x, w[p + "0.weight"], w[p + "0.bias"], stride=2)  # dense 5x5, groups=1
    x = batch_norm(x, w[p + "1.weight"], w[p + "1.bias"], w[p + "1.running_mean"], w[p + "1.running_var"])
    return pointwise(x, w[p + "2.weight"], w[p + "2.bias"])


def clo_block(x: np.ndarray, w: Mapping[str, np.ndarray], p: str, plan: BlockPlan,
              taps: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """[B,C,H,W] -> [B,C',H/s,W/s]. `taps` collects the attention and FFN outputs by module name."""
    attn = efficient_attention(group_norm(x, w[p + "norm1.weight"], w[p + "norm1.bias"]), w, p + "attn.", plan)
    x = x + attn
    ffn = convffn(group_norm(x, w[p + "norm2.weight"], w[p + "norm2.bias"]), w, p + "mlp.", plan.stride)
    skip = x if plan.stride == 1 else downsample(x, w, p + "downsample.")
    if taps is not None:
        taps[p + "attn"], taps[p + "mlp"] = attn, ffn
    return skip + ffn
