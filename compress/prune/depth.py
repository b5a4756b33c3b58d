"""Depth pruning: whole Clo blocks removed, chosen by measured importance.

A block whose input and output have the same shape (stride 1, dim == out_dim) adds its two branches to a residual
stream, so bypassing it (the identity) is a well-defined smaller network, and deleting its weights and renumbering
the later blocks of its stage gives exactly that network: `cloformer` and `reference_np` read the depth off the
checkpoint's keys (`plan_from_weights`). Every stage keeps at least one block, and its last (downsampling) one.

Blocks are chosen greedily: at each step every remaining candidate is bypassed in turn, on top of the blocks already
chosen, and the one whose absence moves the logits least (fine-tuning's distillation loss, compress.distill.kd_loss
without labels, against the full model) goes. Removing blocks together is not the sum of removing each: the greedy
order measures each choice in the network it will be made in.

    student, dropped, scores = depth_prune(model, variant, 2, batches)   # then fine-tune by distillation
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

import cloformer
from reference_np.specs import ModelPlan

from ..distill import kd_loss
from ..errors import InputError
from .structured import rebuilt

Block = tuple[int, int]  # (stage, block index within the stage)


def name(b: Block) -> str:
    return f"layers.{b[0]}.blocks.{b[1]}"


def removable(plan: ModelPlan) -> list[Block]:
    """Blocks whose absence is the identity (stride 1, dim == out_dim), each stage's last block excepted."""
    return [(i, j) for i, stage in enumerate(plan.blocks) for j, b in enumerate(stage[:-1])
            if b.stride == 1 and b.dim == b.out_dim]


def check_depth(plan: ModelPlan, n: int) -> None:
    can = len(removable(plan))
    if not 0 <= n <= can:
        raise InputError(f"depth {n}: this model has {can} removable blocks (stride 1, each stage keeping its last "
                         f"one): {', '.join(name(b) for b in removable(plan))}", field="depth")


class _Bypass(torch.nn.Module):
    """A removed block as the network sees it: its input, unchanged (the residual stream alone)."""

    def forward(self, x: torch.Tensor, taps: list[torch.Tensor] | None = None) -> torch.Tensor:
        return x


@contextmanager
def bypassed(model: cloformer.CloFormer, blocks: list[Block]) -> Iterator[cloformer.CloFormer]:
    """`model` with `blocks` replaced by the identity for the duration."""
    saved = {b: model.layers[b[0]].blocks[b[1]] for b in blocks}
    try:
        for i, j in blocks:
            model.layers[i].blocks[j] = _Bypass()
        yield model
    finally:
        for (i, j), module in saved.items():
            model.layers[i].blocks[j] = module


@torch.no_grad()
def choose_blocks(model: cloformer.CloFormer, n: int, batches: list[torch.Tensor]) -> tuple[list[Block],
                                                                                            dict[str, float]]:
    """The n blocks to remove, greedily (module docstring), and the loss measured when each was chosen."""
    model.eval()
    full = [model(x) for x in batches]
    dropped: list[Block] = []
    scores: dict[str, float] = {}
    for _ in range(n):
        losses = {}
        for b in (b for b in removable(model.plan) if b not in dropped):
            with bypassed(model, [*dropped, b]):
                losses[b] = float(np.mean([kd_loss(model(x), t, None).item() for x, t in zip(batches, full,
                                                                                             strict=True)]))
        best = min(losses, key=lambda b: losses[b])
        dropped.append(best)
        scores[name(best)] = losses[best]
    return dropped, scores


def drop_blocks(w: dict[str, np.ndarray], blocks: list[Block]) -> dict[str, np.ndarray]:
    """Official-format weights without `blocks`, the later blocks of each stage renumbered."""
    gone = set(blocks)
    pattern = re.compile(r"^layers\.(\d+)\.blocks\.(\d+)\.(.*)$")
    out = {}
    for key, value in w.items():
        m = pattern.match(key)
        if m is None:
            out[key] = value
            continue
        i, j, rest = int(m[1]), int(m[2]), m[3]
        if (i, j) in gone:
            continue
        shift = sum(1 for gi, gj in gone if gi == i and gj < j)
        out[f"layers.{i}.blocks.{j - shift}.{rest}"] = value
    return out


def depth_prune(model: cloformer.CloFormer, variant: str, n: int, batches: list[torch.Tensor]
                ) -> tuple[cloformer.CloFormer, list[str], dict[str, float]]:
    """A copy of `model` without its n least important removable blocks: (model, their names in the unpruned
    numbering, the loss measured when each was chosen)."""
    check_depth(model.plan, n)
    blocks, scores = choose_blocks(model, n, batches)
    w = drop_blocks({k: v.detach().numpy() for k, v in model.state_dict().items()}, blocks)
    return rebuilt(w, variant, model), [name(b) for b in sorted(blocks)], scores
