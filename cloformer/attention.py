"""Clo attention (the authors' EfficientAttention). Mirrors reference_np/attention.py.

Attribute names and Sequential indices follow the official checkpoint keys
(`global_q`, `global_kv`, `convs.g`, `act_blocks.g.act_block.{0,2}`, `qkvs.g`, `proj`).
Widths come from a BlockPlan, so pruned checkpoints (fewer channels or heads) build too.
"""

from __future__ import annotations

import torch
from torch import nn

from reference_np.specs import BlockPlan


class AttnMap(nn.Module):
    """Context-aware weights: 1x1 conv -> Swish -> 1x1 conv, dense across the group's channels."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.act_block = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.SiLU(), nn.Conv2d(dim, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act_block(x)


class EfficientAttention(nn.Module):
    def __init__(self, plan: BlockPlan, qkv_bias: bool = True) -> None:
        super().__init__()
        dim, d = plan.dim, plan.dim_head
        self.dim_head = d
        self.scalor = d ** -0.5  # per-head dim, applied after FC-Swish-FC and to q in the global branch
        self.window_size = plan.window_size
        self.global_heads = plan.global_heads
        if plan.global_heads:
            c_g = plan.global_heads * d
            self.global_q = nn.Conv2d(dim, c_g, 1, bias=qkv_bias)
            self.global_kv = nn.Conv2d(dim, 2 * c_g, 1, bias=qkv_bias)
            self.avgpool = nn.AvgPool2d(plan.window_size, plan.window_size) if plan.window_size != 1 else nn.Identity()
        self.convs = nn.ModuleList(nn.Conv2d(3 * c, 3 * c, k, 1, k // 2, groups=3 * c)
                                   for c, k in zip(plan.local_channels, plan.kernel_sizes, strict=True))
        self.act_blocks = nn.ModuleList(AttnMap(c) for c in plan.local_channels)
        self.qkvs = nn.ModuleList(nn.Conv2d(dim, 3 * c, 1, bias=qkv_bias) for c in plan.local_channels)
        # proj reads Z = [local groups..., global heads]: dim wide unless pruned
        self.proj = nn.Conv2d(sum(plan.local_channels) + plan.global_heads * d, dim, 1, bias=qkv_bias)

    def attnconv(self, u: torch.Tensor, g: int) -> torch.Tensor:
        """Local AttnConv group g: [B,C,H,W] -> [B,c,H,W]."""
        q, k, v = self.convs[g](self.qkvs[g](u)).chunk(3, dim=1)  # one DWConv over Q, K and V
        return torch.tanh(self.act_blocks[g](q * k) * self.scalor) * v

    def global_attention(self, u: torch.Tensor) -> torch.Tensor:
        """Global branch: [B,C,H,W] -> [B,c_g,H,W]."""
        b, _, h, w = u.shape
        d, heads = self.dim_head, self.global_heads
        q = self.global_q(u).reshape(b, heads, d, h * w).transpose(-1, -2)  # [B,heads,HW,d]
        kv = self.global_kv(self.avgpool(u))  # pool the normalised input first, then project
        k, v = kv.reshape(b, 2, heads, d, -1).transpose(-1, -2).unbind(1)  # 2 x [B,heads,N,d]
        attn = ((self.scalor * q) @ k.transpose(-1, -2)).softmax(dim=-1)  # [B,heads,HW,N]
        return (attn @ v).transpose(-1, -2).reshape(b, heads * d, h, w)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        parts = [self.attnconv(u, g) for g in range(len(self.qkvs))]
        if self.global_heads:
            parts.append(self.global_attention(u))
        return self.proj(torch.cat(parts, dim=1))
