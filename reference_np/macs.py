"""Multiply-accumulate and parameter counts read off a ModelPlan (torch-free).

Counted: every convolution (dense, depthwise, 1x1), the classifier, and the two attention matmuls
(Q.K^T and S.V). Not counted: norms, activations, pooling, element-wise products, softmax; the same
convention as the architecture spec's hand count (XXS 0.661 G, XS 1.219 G, S 2.170 G at 224).
"""

from __future__ import annotations

import re

from .specs import ModelPlan


def count_macs(plan: ModelPlan, height: int, width: int) -> dict[str, int]:
    """MACs per part ('stem', 'layers.i.blocks.j', 'head') and 'total', for one image."""
    c0 = plan.stem_dim
    h, w = height // 2, width // 2
    out = {"stem": (c0 // 2) * 3 * 9 * h * w}
    h, w = h // 2, w // 2
    out["stem"] += (c0 * (c0 // 2) * 9 + 2 * c0 * c0 * 9 + c0 * c0) * h * w
    for i, stage in enumerate(plan.blocks):
        for j, b in enumerate(stage):
            n = h * w
            m = sum(3 * c * b.dim * n + 3 * c * k * k * n + 2 * c * c * n
                    for c, k in zip(b.local_channels, b.kernel_sizes, strict=True))
            if b.global_heads:
                c_g = b.global_heads * b.dim_head
                keys = (h // b.window_size) * (w // b.window_size)
                m += c_g * b.dim * n + 2 * c_g * b.dim * keys + 2 * c_g * n * keys
            m += b.dim * b.dim * n + b.hidden * b.dim * n  # proj, fc1
            h, w = (h + b.stride - 1) // b.stride, (w + b.stride - 1) // b.stride
            n_out = h * w
            m += b.hidden * b.mlp_kernel_size ** 2 * n_out + b.out_dim * b.hidden * n_out  # dwconv, fc2
            if b.stride == 2:
                m += (b.dim * b.dim * b.mlp_kernel_size ** 2 + b.out_dim * b.dim) * n_out
            out[f"layers.{i}.blocks.{j}"] = m
    out["head"] = plan.num_features * plan.num_classes
    out["total"] = sum(out.values())
    return out


def count_params(weights: dict) -> int:
    """Learnable parameters of official-format weights (BatchNorm running statistics excluded)."""
    skip = ("running_mean", "running_var", "num_batches_tracked")
    return int(sum(v.size for k, v in weights.items() if not k.endswith(skip)))


def count_layers(weights: dict) -> dict[str, int]:
    """Layers by kind, read off the weights (so pruned checkpoints too): 'convolutions' (every 4-D weight),
    'depthwise' (those with one input channel per group, GroupConvolution in an IR), 'dense' (the rest) and
    'norms' (GroupNorm(1, C) layers, one MVN each in the deploy graph). What a converted graph must hold."""
    convs = [v for v in weights.values() if getattr(v, "ndim", 0) == 4]
    depthwise = sum(v.shape[1] == 1 for v in convs)
    norms = sum(bool(re.search(r"(^|\.)(norm\d?|layernorm)\.weight$", k)) for k in weights)
    return {"convolutions": len(convs), "depthwise": depthwise, "dense": len(convs) - depthwise, "norms": norms}
