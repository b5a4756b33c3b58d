"""Clo attention: local AttnConv groups beside a global branch on pooled K/V, merged by a 1x1 proj.

Mirrors cloformer/attention.py. u is the GroupNorm'd block input [B,C,H,W].
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .ops import avg_pool, conv2d, pointwise, softmax, swish
from .specs import BlockPlan


def attnconv(u: np.ndarray, w: Mapping[str, np.ndarray], p: str, g: int, scale: float) -> np.ndarray:
    """Local branch, group g: shared DWConv on Q, K, V; tanh-gated context-aware weights. -> [B,c,H,W]."""
    t = pointwise(u, w[f"{p}qkvs.{g}.weight"], w[f"{p}qkvs.{g}.bias"])  # [B,C,H,W] -> [B,3c,H,W]
    t = conv2d(t, w[f"{p}convs.{g}.weight"], w[f"{p}convs.{g}.bias"], groups=t.shape[1])  # depthwise
    q, k, v = np.split(t, 3, axis=1)  # 3 x [B,c,H,W]
    a = pointwise(q * k, w[f"{p}act_blocks.{g}.act_block.0.weight"], w[f"{p}act_blocks.{g}.act_block.0.bias"])
    a = pointwise(swish(a), w[f"{p}act_blocks.{g}.act_block.2.weight"], w[f"{p}act_blocks.{g}.act_block.2.bias"])
    return np.tanh(a * scale) * v  # scale applied after FC-Swish-FC, inside the tanh


def global_attention(u: np.ndarray, w: Mapping[str, np.ndarray], p: str, d: int, ws: int,
                     scale: float) -> np.ndarray:
    """Global branch: full-resolution Q against K/V from AvgPool(u). -> [B,c_g,H,W]."""
    bsz, _, h, wd = u.shape
    q = pointwise(u, w[p + "global_q.weight"], w[p + "global_q.bias"])  # [B,c_g,H,W]
    c_g = q.shape[1]
    q = q.reshape(bsz, c_g // d, d, h * wd).swapaxes(2, 3)  # [B,heads,HW,d]
    kv = pointwise(avg_pool(u, ws), w[p + "global_kv.weight"], w[p + "global_kv.bias"])  # [B,2c_g,h,w]
    k, v = kv.reshape(bsz, 2, c_g // d, d, -1).swapaxes(3, 4).swapaxes(0, 1)  # 2 x [B,heads,N,d]
    s = softmax((scale * q) @ k.swapaxes(-1, -2))  # [B,heads,HW,N]
    return (s @ v).swapaxes(2, 3).reshape(bsz, c_g, h, wd)  # [B,heads,HW,d] -> [B,c_g,H,W]


def efficient_attention(u: np.ndarray, w: Mapping[str, np.ndarray], p: str, plan: BlockPlan) -> np.ndarray:
    """concat(local groups..., global) -> proj: [B,C,H,W] -> [B,C,H,W]."""
    scale = plan.dim_head ** -0.5
    parts = [attnconv(u, w, p, g, scale) for g in range(len(plan.local_channels))]
    if plan.global_heads:
        parts.append(global_attention(u, w, p, plan.dim_head, plan.window_size, scale))
    return pointwise(np.concatenate(parts, axis=1), w[p + "proj.weight"], w[p + "proj.bias"])
