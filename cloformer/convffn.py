"""ConvFFN: fc1 -> GELU(erf) -> depthwise k x k (stride s) -> fc2. Mirrors reference_np/convffn.py."""

from __future__ import annotations

import torch
from torch import nn


class ConvFFN(nn.Module):
    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int, stride: int,
                 out_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(in_channels, hidden_channels, 1)
        self.act = nn.GELU()  # exact erf form
        self.dwconv = nn.Conv2d(hidden_channels, hidden_channels, kernel_size, stride, kernel_size // 2,
                                groups=hidden_channels)
        self.fc2 = nn.Conv2d(hidden_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dwconv(self.act(self.fc1(x))))
