"""Fine-tuning a compressed student by distillation from its uncompressed teacher, with the augmentation in pixel
space. The loss is the caller's: pruning's is kd_loss (KL on softened logits, plus label cross-entropy when the
data has labels); QAT's matches logits and intermediates (compress.quantize.qat.matching_loss)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from .data import Images, Preprocess
from .data.augment import augment
from .progress import Progress


class FinetuneSettings(Protocol):
    """What fine-tuning reads of a job's settings (compress.settings.PruneSettings has these fields)."""

    finetune_steps: int
    finetune_batch: int
    lr: float
    seed: int


TEMPERATURE = 2.0  # of the distillation's softened logits
# student output, teacher output, labels of the batch (None without labels) -> the loss to minimise
Loss = Callable[[Any, Any, "torch.Tensor | None"], torch.Tensor]


def kd_loss(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """KL on softened logits, plus label cross-entropy when the data has labels (pruning's default)."""
    loss = F.kl_div(F.log_softmax(s / TEMPERATURE, -1), F.softmax(t / TEMPERATURE, -1),
                    reduction="batchmean") * TEMPERATURE ** 2
    if y is not None:
        loss = 0.7 * loss + 0.3 * F.cross_entropy(s, y, label_smoothing=0.1)
    return loss


# ------------------------------------------------------------------ fine-tuning with distillation
class Hooks:
    """What a compression method adds to fine-tuning; nothing by default (structured pruning). NNCF's masks
    (compress.prune.unstructured) add an extra loss or a sparsity schedule stepped during fine-tuning."""

    def extra_loss(self) -> Any:
        return None

    def param_groups(self, params: list[torch.nn.Parameter], lr: float, steps: int) -> list[dict[str, Any]]:
        """The optimiser's parameter groups: one at the fine-tuning lr unless a method needs its own."""
        return [{"params": params, "lr": lr}]

    def after_step(self, step: int, steps: int) -> None:
        return None

    def finish(self) -> None:
        return None


def finetune(student: torch.nn.Module, teacher: torch.nn.Module, images: Images, settings: FinetuneSettings,
             hooks: Hooks | None = None, loss_fn: Loss = kd_loss) -> list[float]:
    """Distillation from the teacher by `loss_fn` (kd_loss: KL, plus label cross-entropy when labels exist):
    settings' finetune_steps steps of finetune_batch images at a cosine-decayed lr, seeded; returns the losses."""
    steps, batch, lr, seed = settings.finetune_steps, settings.finetune_batch, settings.lr, settings.seed
    hooks = hooks or Hooks()
    pool_x = torch.from_numpy(images.xs)
    pool_y = torch.tensor(images.ys) if images.labelled else None
    if steps == 0:
        return []
    g = torch.Generator().manual_seed(seed)
    pre = images.transform or Preprocess(images.size)  # the images' own normalisation, undone for augmentation
    mean = torch.tensor(pre.mean).view(1, 3, 1, 1)
    std = torch.tensor(pre.std).view(1, 3, 1, 1)
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(hooks.param_groups(params, lr, steps), lr=lr, weight_decay=0.01)
    lr_at = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + np.cos(np.pi * s / steps)))
    teacher.eval()
    student.train()
    losses = []
    bar = Progress(range(steps), desc="fine-tune (distillation)", unit="step")
    for step in bar:
        idx = torch.randint(0, len(pool_x), (min(batch, len(pool_x)),), generator=g)
        x = (augment(pool_x[idx] * std * 255 + mean * 255, g) / 255 - mean) / std  # augment in pixel space
        with torch.no_grad():
            t = teacher(x)
        loss = loss_fn(student(x), t, pool_y[idx] if pool_y is not None else None)
        extra = hooks.extra_loss()
        if extra is not None:
            loss = loss + extra
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        lr_at.step()
        hooks.after_step(step, steps)
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    hooks.finish()
    student.eval()
    return losses
