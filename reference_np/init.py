"""Seeded random weights in the official key layout, made by NumPy alone (for goldens and tests).

Fan-in scaled normal weights keep activations O(1) through all 12 blocks; BatchNorm gets non-trivial
running statistics and affine terms, so a BatchNorm mistake cannot hide behind mean 0 / var 1.
"""

from __future__ import annotations

import numpy as np

from .specs import ModelPlan


def _layout(plan: ModelPlan) -> list[tuple[str, tuple[int, ...], str]]:
    """(key, shape, kind) for every state-dict entry, in the authors' registration order."""
    out: list[tuple[str, tuple[int, ...], str]] = []

    def conv(p: str, o: int, i: int, k: int) -> None:
        out.extend([(p + "weight", (o, i, k, k), "conv"), (p + "bias", (o,), "bias")])

    def norm(p: str, c: int, kind: str = "norm") -> None:
        out.extend([(p + "weight", (c,), kind + "_w"), (p + "bias", (c,), kind + "_b")])
        if kind == "bn":
            out.extend([(p + "running_mean", (c,), "bn_mean"), (p + "running_var", (c,), "bn_var"),
                        (p + "num_batches_tracked", (), "count")])

    c0 = plan.stem_dim
    for n, (i, o, k) in enumerate([(3, c0 // 2, 3), (c0 // 2, c0, 3), (c0, c0, 3), (c0, c0, 3)], start=1):
        conv(f"patch_embed.conv{n}.conv.0.", o, i, k)
        norm(f"patch_embed.conv{n}.conv.1.", o, "bn")
    conv("patch_embed.conv5.", c0, c0, 1)
    norm("patch_embed.layernorm.", c0)
    for s, stage in enumerate(plan.blocks):
        for j, b in enumerate(stage):
            p = f"layers.{s}.blocks.{j}."
            norm(p + "norm1.", b.dim)
            if b.global_heads:
                c_g = b.global_heads * b.dim_head
                conv(p + "attn.global_q.", c_g, b.dim, 1)
                conv(p + "attn.global_kv.", 2 * c_g, b.dim, 1)
            for g, (c, k) in enumerate(zip(b.local_channels, b.kernel_sizes, strict=True)):
                conv(f"{p}attn.convs.{g}.", 3 * c, 1, k)
            for g, c in enumerate(b.local_channels):
                conv(f"{p}attn.act_blocks.{g}.act_block.0.", c, c, 1)
                conv(f"{p}attn.act_blocks.{g}.act_block.2.", c, c, 1)
            for g, c in enumerate(b.local_channels):
                conv(f"{p}attn.qkvs.{g}.", 3 * c, b.dim, 1)
            conv(p + "attn.proj.", b.dim, sum(b.local_channels) + b.global_heads * b.dim_head, 1)
            norm(p + "norm2.", b.dim)
            if b.stride == 2:
                conv(p + "downsample.0.", b.dim, b.dim, b.mlp_kernel_size)
                norm(p + "downsample.1.", b.dim, "bn")
                conv(p + "downsample.2.", b.out_dim, b.dim, 1)
            conv(p + "mlp.fc1.", b.hidden, b.dim, 1)
            conv(p + "mlp.dwconv.", b.hidden, 1, b.mlp_kernel_size)
            conv(p + "mlp.fc2.", b.out_dim, b.hidden, 1)
    norm("norm.", plan.num_features)
    out.extend([("head.weight", (plan.num_classes, plan.num_features), "conv"),
                ("head.bias", (plan.num_classes,), "bias")])
    return out


def random_weights(plan: ModelPlan, seed: int, dtype: type = np.float64) -> dict[str, np.ndarray]:
    """Deterministic weights for `plan` from `seed` (numpy PCG64); same seed, same bytes."""
    rng = np.random.default_rng(seed)
    w: dict[str, np.ndarray] = {}
    for key, shape, kind in _layout(plan):
        if kind == "conv":
            fan_in = int(np.prod(shape[1:]))
            a = rng.standard_normal(shape) / np.sqrt(fan_in)
        elif kind == "bias":
            a = rng.uniform(-0.1, 0.1, shape)
        elif kind in ("norm_w", "bn_w"):
            a = 1 + 0.1 * rng.standard_normal(shape)
        elif kind in ("norm_b", "bn_b", "bn_mean"):
            a = 0.1 * rng.standard_normal(shape)
        elif kind == "bn_var":
            a = rng.uniform(0.5, 1.5, shape)
        else:  # num_batches_tracked
            w[key] = np.array(0, dtype=np.int64)
            continue
        w[key] = a.astype(dtype)
    return w
