"""Clo block (the authors' EfficientBlock) and stage. Mirrors reference_np/block.py."""

from __future__ import annotations

import torch
from torch import nn

from reference_np.specs import BlockPlan

from .attention import EfficientAttention
from .convffn import ConvFFN


class DropPath(nn.Module):
    """Stochastic depth per sample (training only; identity at eval)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty(x.shape[0], 1, 1, 1).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class CloBlock(nn.Module):
    """x1 = x + Attn(GN1(x)); out = Skip(x1) + ConvFFN(GN2(x1)). Skip is a 5x5/s2 conv-BN-1x1 when s=2."""

    def __init__(self, plan: BlockPlan, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(1, plan.dim)
        self.attn = EfficientAttention(plan)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.GroupNorm(1, plan.dim)
        k = plan.mlp_kernel_size
        if plan.stride == 1:
            self.downsample: nn.Module = nn.Identity()
        else:
            self.downsample = nn.Sequential(
                nn.Conv2d(plan.dim, plan.dim, k, 2, k // 2),  # dense, groups=1
                nn.BatchNorm2d(plan.dim),
                nn.Conv2d(plan.dim, plan.out_dim, 1),
            )
        self.mlp = ConvFFN(plan.dim, plan.hidden, k, plan.stride, plan.out_dim)

    def forward(self, x: torch.Tensor, taps: list[torch.Tensor] | None = None) -> torch.Tensor:
        """`taps` (forward_intermediates) collects the attention and FFN branch outputs and the block output."""
        attn = self.attn(self.norm1(x))
        x = x + self.drop_path(attn)
        ffn = self.mlp(self.norm2(x))
        out = self.downsample(x) + self.drop_path(ffn)
        if taps is not None:
            taps += [attn, ffn, out]
        return out


EfficientBlock = CloBlock  # the authors' name


class CloLayer(nn.Module):
    def __init__(self, plans: tuple[BlockPlan, ...], drop_paths: list[float]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(CloBlock(p, dp) for p, dp in zip(plans, drop_paths, strict=True))

    def forward(self, x: torch.Tensor, taps: list[torch.Tensor] | None = None) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x, taps)
        return x
