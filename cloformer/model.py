"""CloFormer: stem -> four stages of Clo blocks -> head. Mirrors reference_np/model.py."""

from __future__ import annotations

import torch
from torch import nn

from reference_np.specs import INPUT_MULTIPLE, ModelPlan, intermediate_names

from .block import CloLayer
from .stem import PatchEmbedding


class CloFormer(nn.Module):
    def __init__(self, plan: ModelPlan, drop_path_rate: float = 0.0, in_chans: int = 3) -> None:
        super().__init__()
        self.plan = plan
        self.num_classes = plan.num_classes
        self.patch_embed = PatchEmbedding(in_chans, plan.stem_dim)
        n_blocks = sum(len(s) for s in plan.blocks)
        dpr = torch.linspace(0, drop_path_rate, n_blocks).tolist()
        self.layers = nn.ModuleList()
        start = 0
        for stage in plan.blocks:
            self.layers.append(CloLayer(stage, dpr[start:start + len(stage)]))
            start += len(stage)
        self.norm = nn.GroupNorm(1, plan.num_features)  # on the full map, before pooling
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(plan.num_features, plan.num_classes) if plan.num_classes > 0 else nn.Identity()

    def _check_input(self, x: torch.Tensor) -> None:
        h, w = x.shape[-2:]
        if not torch.jit.is_tracing() and not torch.compiler.is_compiling() and (
                h % INPUT_MULTIPLE or w % INPUT_MULTIPLE):
            raise ValueError(f"CloFormer input sides must be multiples of {INPUT_MULTIPLE}; got {h} x {w}")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map [B, C3, H/32, W/32] (timm convention; before the head's norm)."""
        self._check_input(x)
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """GroupNorm on the full map, global average pool, classifier (timm convention)."""
        x = self.avgpool(self.norm(x)).flatten(1)
        return x if pre_logits else self.head(x)

    def forward_feature(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled pre-classifier features [B, C3]: the authors' method (singular name)."""
        return self.forward_head(self.forward_features(x), pre_logits=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and every named intermediate (reference_np.specs.intermediate_names: the NumPy reference's
        keys), collected in the forward pass itself, no hooks."""
        self._check_input(x)
        taps = [self.patch_embed(x)]
        x = taps[0]
        for layer in self.layers:
            x = layer(x, taps)
        norm = self.norm(x)
        features = self.avgpool(norm).flatten(1)
        taps += [norm, features]
        return self.head(features), dict(zip(intermediate_names(self.plan), taps, strict=True))
