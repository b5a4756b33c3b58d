"""Stem (PatchEmbedding): four conv-BN-ReLU, a 1x1 conv, GroupNorm. [B,3,H,W] -> [B,C0,H/4,W/4]."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .ops import batch_norm, conv2d, group_norm, relu


def basic_block(x: np.ndarray, w: Mapping[str, np.ndarray], p: str, stride: int) -> np.ndarray:
    """conv.0 -> conv.1 (BatchNorm) -> ReLU."""
    x = conv2d(x, w[p + "conv.0.weight"], w[p + "conv.0.bias"], stride)
    x = batch_norm(x, w[p + "conv.1.weight"], w[p + "conv.1.bias"],
                   w[p + "conv.1.running_mean"], w[p + "conv.1.running_var"])
    return relu(x)


def patch_embed(x: np.ndarray, w: Mapping[str, np.ndarray], p: str = "patch_embed.") -> np.ndarray:
    x = basic_block(x, w, p + "conv1.", 2)  # [B,3,H,W] -> [B,C0/2,H/2,W/2]
    x = basic_block(x, w, p + "conv2.", 2)  # -> [B,C0,H/4,W/4]
    x = basic_block(x, w, p + "conv3.", 1)
    x = basic_block(x, w, p + "conv4.", 1)
    x = conv2d(x, w[p + "conv5.weight"], w[p + "conv5.bias"])
    return group_norm(x, w[p + "layernorm.weight"], w[p + "layernorm.bias"])
