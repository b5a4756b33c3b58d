"""NNCF unstructured pruning (magnitude with its scheduler, or regularization-based), fine-tuned by
compress.distill."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import cloformer

from .errors import InputError
from .settings import check_ratio

NNCF_RB_NEEDS_STEPS = "method nncf-rb learns its masks during fine-tuning: finetune_steps must be > 0"


# ------------------------------------------------------------------ NNCF unstructured pruning
def nncf_prune(model: cloformer.CloFormer, method: str, ratio: float, example: torch.Tensor, steps: int
               ) -> tuple[Any, Any]:
    """(model with NNCF masks, its magnitude scheduler or regularization loss for fine-tuning)."""
    import nncf
    from nncf.torch.function_hook.pruning.magnitude.schedulers import ExponentialMagnitudePruningScheduler
    from nncf.torch.function_hook.pruning.rb.losses import RBLoss

    from .distill import Masks

    check_ratio(ratio)
    if method == "nncf-magnitude":
        mode = nncf.PruneMode.UNSTRUCTURED_MAGNITUDE_GLOBAL
        pruned = nncf.prune(model, mode=mode, ratio=ratio if steps == 0 else ratio * 0.3, examples_inputs=example)
        sched = None
        if steps:
            sched = ExponentialMagnitudePruningScheduler(pruned, mode=mode, initial_ratio=ratio * 0.3,
                                                         target_ratio=ratio, target_epoch=SCHED_EPOCHS)
            sched.step()
        return pruned, Masks(scheduler=sched)
    if steps == 0:
        raise InputError(NNCF_RB_NEEDS_STEPS, field=("method", "finetune_steps"))
    pruned = nncf.prune(model, mode=nncf.PruneMode.UNSTRUCTURED_REGULARIZATION_BASED, examples_inputs=example)
    return pruned, Masks(extra_loss=RBLoss(pruned, target_ratio=ratio, p=0.05))


SCHED_EPOCHS = 5  # the magnitude scheduler reaches the target after 5 of its epochs (60% of fine-tuning)


def official_weights(sd: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Official keys only: NNCF's mask buffers ('__nncf_hooks.post_hooks.<module:path:weight>__0.0.binary_mask')
    are applied to their weights (a no-op when nncf.strip already did) and dropped."""
    w = {k: v.detach().numpy().copy() for k, v in sd.items() if not k.startswith("__nncf_hooks")}
    for k, mask in sd.items():
        if k.startswith("__nncf_hooks") and k.endswith("binary_mask"):
            name = k.split(".post_hooks.", 1)[-1].split("__", 1)[0].replace(":", ".")
            if name not in w or w[name].shape != tuple(mask.shape):
                raise KeyError(f"NNCF mask {k} has no matching weight '{name}'")
            w[name] = w[name] * mask.detach().numpy().astype(w[name].dtype)
    return w
