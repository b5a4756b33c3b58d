"""Fine-tuning a pruned student by distillation from the unpruned teacher (KL on softened logits, plus label
cross-entropy when the data has labels), with the augmentation in pixel space."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

import reference_np as rn

from .augment import augment
from .data import DataSource, no_images
from .nncf_pruning import SCHED_EPOCHS
from .progress import Progress

if TYPE_CHECKING:
    from .pruning import PruneSettings

TEMPERATURE = 2.0  # of the distillation's softened logits


# ------------------------------------------------------------------ fine-tuning with distillation
@dataclass
class Pool:
    """The fine-tuning images, preprocessed, in memory; labels when the source has them."""

    x: torch.Tensor  # [N,3,S,S] float32, normalised
    y: torch.Tensor | None


@dataclass
class Masks:
    """What NNCF's unstructured pruning adds to fine-tuning: a sparsity scheduler (stepped during it) or an extra
    loss (regularization-based masks)."""

    scheduler: Any = None
    extra_loss: Any = None


def load_pool(source: DataSource) -> Pool:
    xs, ys = [], []
    for x, y in Progress(source, total=len(source), desc=f"load {source.name}", unit="img"):
        xs.append(x)
        ys.append(y)
    if not xs:
        raise no_images("fine-tuning source", source.name)
    return Pool(torch.from_numpy(np.stack(xs)), None if None in ys else torch.tensor(ys))


def finetune(student: torch.nn.Module, teacher: torch.nn.Module, pool: Pool, settings: PruneSettings,
             masks: Masks | None = None) -> list[float]:
    """KL distillation from the unpruned teacher (plus label cross-entropy when labels exist): settings'
    finetune_steps steps of finetune_batch images at a cosine-decayed lr, seeded; returns the losses."""
    steps, batch, lr, seed = settings.finetune_steps, settings.finetune_batch, settings.lr, settings.seed
    masks = masks or Masks()
    sched, extra_loss, pool_x, pool_y = masks.scheduler, masks.extra_loss, pool.x, pool.y
    if steps == 0:
        return []
    g = torch.Generator().manual_seed(seed)
    mean = torch.tensor(rn.specs.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(rn.specs.IMAGENET_STD).view(1, 3, 1, 1)
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    lr_at = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + np.cos(np.pi * s / steps)))
    sched_every = max(1, int(0.6 * steps) // (SCHED_EPOCHS + 1))
    teacher.eval()
    student.train()
    losses = []
    bar = Progress(range(steps), desc="fine-tune (distillation)", unit="step")
    for step in bar:
        idx = torch.randint(0, len(pool_x), (min(batch, len(pool_x)),), generator=g)
        x = (augment(pool_x[idx] * std * 255 + mean * 255, g) / 255 - mean) / std  # augment in pixel space
        with torch.no_grad():
            t = teacher(x)
        s = student(x)
        loss = F.kl_div(F.log_softmax(s / TEMPERATURE, -1), F.softmax(t / TEMPERATURE, -1),
                        reduction="batchmean") * TEMPERATURE ** 2
        if pool_y is not None:
            loss = 0.7 * loss + 0.3 * F.cross_entropy(s, pool_y[idx], label_smoothing=0.1)
        if extra_loss is not None:
            loss = loss + extra_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        lr_at.step()
        if sched is not None and (step + 1) % sched_every == 0:
            sched.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    if sched is not None and sched.current_ratio < sched.target_ratio:
        sched.step(SCHED_EPOCHS)  # short runs end at the target sparsity all the same
    student.eval()
    return losses
