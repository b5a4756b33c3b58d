"""Stem (PatchEmbedding). Mirrors reference_np/stem.py; key prefix `patch_embed.`."""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """conv.0 -> conv.1 (BatchNorm2d; the authors' SyncBatchNorm has the same keys) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class PatchEmbedding(nn.Module):
    """[B,3,H,W] -> [B,C0,H/4,W/4]: two stride-2 and two stride-1 conv-BN-ReLU, 1x1 conv, GroupNorm(1,C0)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 32) -> None:
        super().__init__()
        self.conv1 = BasicBlock(in_channels, out_channels // 2, 3, 2)
        self.conv2 = BasicBlock(out_channels // 2, out_channels, 3, 2)
        self.conv3 = BasicBlock(out_channels, out_channels, 3, 1)
        self.conv4 = BasicBlock(out_channels, out_channels, 3, 1)
        self.conv5 = nn.Conv2d(out_channels, out_channels, 1, 1, 0)
        self.layernorm = nn.GroupNorm(1, out_channels)  # the authors' "layernorm" is GroupNorm(1, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv4(self.conv3(self.conv2(self.conv1(x))))
        return self.layernorm(self.conv5(x))
