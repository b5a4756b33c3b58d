"""Load a CloFormer variant and its checkpoint strictly: the first stage of every job."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

import cloformer
import reference_np as rn
from cloformer.deploy import DeployCloFormer
from cloformer.registry import resolve_checkpoint

from .data import Preprocess
from .errors import InputError


@dataclass
class LoadedModel:
    variant: str
    checkpoint: str
    model: cloformer.CloFormer  # float32, eval
    input_size: int
    weights: dict[str, np.ndarray]  # official keys, float32: what the NumPy reference runs

    @property
    def trained_size(self) -> int:
        """The checkpoint's own input side (its metadata, else the variant's): what it was trained or fine-tuned at."""
        return int(self.model.pretrained_cfg["input_size"][-1])

    @property
    def transform(self) -> Preprocess:
        """Its evaluation transform at `input_size`, from the model card (pretrained_cfg), as timm's
        resolve_data_config gives it: every source this model is calibrated, evaluated or fine-tuned on uses it."""
        return Preprocess.from_card(self.model.pretrained_cfg, self.input_size)

    @property
    def num_classes(self) -> int:
        return self.model.num_classes

    def deploy(self, dtype: torch.dtype = torch.float32) -> DeployCloFormer:
        return DeployCloFormer(self.weights, self.model.plan, dtype=dtype)


def load(variant: str, checkpoint: str | os.PathLike | None, input_size: int | None = None) -> LoadedModel:
    """Build the variant and load its checkpoint strictly; input size defaults to the checkpoint's own.
    Every problem with the checkpoint (missing, unreadable, wrong keys or shapes, NaN/Inf) is an InputError
    naming the file and the keys."""
    try:
        model = cloformer.create_model(variant, checkpoint=checkpoint, allow_pruned=True).float().eval()
    except (FileNotFoundError, IsADirectoryError, PermissionError, cloformer.CheckpointError,
            cloformer.UnknownModelError) as e:  # the known input conditions only: any other error is a bug
        raise InputError(str(e).strip("'\"")) from None
    size = int(input_size or model.pretrained_cfg["input_size"][-1])
    try:
        rn.specs.check_input_size(size, size)
    except ValueError as e:
        raise InputError(str(e)) from None
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    name = checkpoint if isinstance(checkpoint, str) and checkpoint in cloformer.SHIPPED else str(
        resolve_checkpoint(checkpoint) if checkpoint else "random-init")
    try:
        rn.check_finite(weights, f"checkpoint {name}")
    except ValueError as e:
        raise InputError(str(e)) from None
    return LoadedModel(variant, name, model, size, weights)


def output_bytes(loaded: LoadedModel, pruned: bool = False) -> int:
    """About what a run folder needs on disk: the FP32 IR and the ONNX file (4 bytes a weight each), the INT8 IR
    (~1.2 bytes a weight), reports and plots; a pruning run adds its checkpoint (at most 4 bytes a weight)."""
    n = sum(int(v.size) for v in loaded.weights.values())
    return int(n * (4 + 4 + 1.2 + (4 if pruned else 0))) + (4 << 20)


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
