"""NNCF unstructured pruning (magnitude with its scheduler, or regularization-based), fine-tuned by
compress.distill with the hooks defined here (the schedule is NNCF's, so it lives beside NNCF's masks)."""

from __future__ import annotations

import math
from typing import Any

import torch

import cloformer

from ..distill import Hooks
from ..errors import InputError
from ..settings import NNCF_RB_NEEDS_STEPS, check_ratio

SCHED_EPOCHS = 5  # the magnitude scheduler reaches the target after 5 of its epochs (60% of fine-tuning)


# ------------------------------------------------------------------ NNCF unstructured pruning
def nncf_prune(model: cloformer.CloFormer, method: str, ratio: float, example: torch.Tensor, steps: int
               ) -> tuple[Any, Hooks]:
    """(model with NNCF masks, the fine-tuning hooks: its magnitude schedule or regularization loss)."""
    import nncf
    from nncf.torch.function_hook.pruning.magnitude.schedulers import ExponentialMagnitudePruningScheduler
    from nncf.torch.function_hook.pruning.rb.losses import RBLoss


    check_ratio(ratio)
    if method == "nncf-magnitude":
        mode = nncf.PruneMode.UNSTRUCTURED_MAGNITUDE_GLOBAL
        pruned = nncf.prune(model, mode=mode, ratio=ratio if steps == 0 else ratio * 0.3, examples_inputs=example)
        sched = None
        if steps:
            sched = ExponentialMagnitudePruningScheduler(pruned, mode=mode, initial_ratio=ratio * 0.3,
                                                         target_ratio=ratio, target_epoch=SCHED_EPOCHS)
            sched.step()
        return pruned, MagnitudeSchedule(sched) if sched is not None else Hooks()
    if steps == 0:
        raise InputError(NNCF_RB_NEEDS_STEPS, field=("method", "finetune_steps"))
    pruned = nncf.prune(model, mode=nncf.PruneMode.UNSTRUCTURED_REGULARIZATION_BASED, examples_inputs=example)
    return pruned, RegularizationLoss(RBLoss(pruned, target_ratio=ratio, p=0.05))



class MagnitudeSchedule(Hooks):
    """NNCF's exponential magnitude schedule, stepped SCHED_EPOCHS times over the first 60% of fine-tuning; short
    runs end at the target sparsity all the same."""

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    def after_step(self, step: int, steps: int) -> None:
        if (step + 1) % max(1, int(0.6 * steps) // (SCHED_EPOCHS + 1)) == 0:
            self.scheduler.step()

    def finish(self) -> None:
        if self.scheduler.current_ratio < self.scheduler.target_ratio:
            self.scheduler.step(SCHED_EPOCHS)


# NNCF's RB mask logits start at logit(0.99) and prune where they fall below 0; Adam moves a parameter by about its
# lr a step, so at the distillation lr they would never get there. Their own lr lets them cross within the first
# half of fine-tuning (the cosine schedule averages ~0.8 there), whatever the number of steps
RB_MASK_START = math.log(0.99 / 0.01)  # logit(0.99)


def rb_mask_lr(steps: int) -> float:
    return RB_MASK_START / (0.5 * steps * 0.8)


class RegularizationLoss(Hooks):
    """NNCF's regularization-based masks: their loss is added to every step's, and the masks learn at their own
    rate (rb_mask_lr)."""

    def __init__(self, loss: Any) -> None:
        self.loss = loss

    def extra_loss(self) -> Any:
        return self.loss()

    def param_groups(self, params: list[torch.nn.Parameter], lr: float, steps: int) -> list[dict[str, Any]]:
        masks = {id(q) for n, q in self.loss.model.named_parameters() if n.endswith(".mask")}
        return [{"params": [p for p in params if id(p) not in masks], "lr": lr},
                {"params": [p for p in params if id(p) in masks], "lr": rb_mask_lr(steps), "weight_decay": 0.0}]
