"""Training-time augmentation on batched tensors (shared by tools/train_proxy.py and compress.prune)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Flip, colour jitter (brightness/contrast/saturation 0.4), grayscale p=0.2 on uint8-range floats."""
    b = x.shape[0]
    u = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    flip = u(b) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    x = x * (0.6 + 0.8 * u(b, 1, 1, 1))  # brightness
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (0.6 + 0.8 * u(b, 1, 1, 1)) + mean  # contrast
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    x = (x - gray) * (0.6 + 0.8 * u(b, 1, 1, 1)) + gray  # saturation
    x = torch.where((u(b) < 0.2)[:, None, None, None], gray.expand_as(x), x)
    return x.clamp(0, 255)


def random_erase(x: torch.Tensor, g: torch.Generator, p: float = 0.25) -> torch.Tensor:
    """RandomErasing (timm 'pixel' mode): a box of N(0,1) noise in normalised space."""
    b, _, h, w = x.shape
    for i in torch.nonzero(torch.rand(b, generator=g) < p).flatten().tolist():
        area = float(torch.empty(1).uniform_(0.02, 0.25, generator=g)) * h * w
        ar = float(torch.exp(torch.empty(1).uniform_(np.log(0.3), np.log(3.3), generator=g)))
        eh, ew = min(h, round((area * ar) ** 0.5)), min(w, round((area / ar) ** 0.5))
        top = int(torch.randint(0, h - eh + 1, (1,), generator=g))
        left = int(torch.randint(0, w - ew + 1, (1,), generator=g))
        x[i, :, top:top + eh, left:left + ew] = torch.randn(3, eh, ew, generator=g)
    return x


def smoothed(y: torch.Tensor, classes: int, smoothing: float) -> torch.Tensor:
    """One-hot targets with label smoothing."""
    return F.one_hot(y, classes).float() * (1 - smoothing) + smoothing / classes


def mix(x: torch.Tensor, y: torch.Tensor, g: torch.Generator, smoothing: float, classes: int
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup (alpha 0.8) or CutMix (alpha 1.0), switch prob 0.5, with label smoothing."""
    t = smoothed(y, classes, smoothing)
    perm = torch.randperm(x.shape[0], generator=g)
    if float(torch.rand(1, generator=g)) < 0.5:
        lam = float(np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=g))).beta(0.8, 0.8))
        return lam * x + (1 - lam) * x[perm], lam * t + (1 - lam) * t[perm]
    lam = float(np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=g))).beta(1.0, 1.0))
    h, w = x.shape[-2:]
    ch, cw = int(h * (1 - lam) ** 0.5), int(w * (1 - lam) ** 0.5)
    cy, cx = int(torch.randint(0, h, (1,), generator=g)), int(torch.randint(0, w, (1,), generator=g))
    y0, y1, x0, x1 = max(cy - ch // 2, 0), min(cy + ch // 2, h), max(cx - cw // 2, 0), min(cx + cw // 2, w)
    x = x.clone()
    x[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
    lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    return x, lam * t + (1 - lam) * t[perm]
