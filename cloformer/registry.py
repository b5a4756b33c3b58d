"""Model registry (timm style): create_model(name, num_classes, checkpoint) and list_models()."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from reference_np.specs import VARIANTS, BlockPlan, plan_from_spec, plan_from_weights

from .checkpoint import CheckpointError, CheckpointMismatchError, load_checkpoint, read_state_dict
from .model import CloFormer


class UnknownModelError(ValueError):
    """A model or shipped-checkpoint name that the registry does not have (the user's input)."""

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
# Named checkpoints shipped with the package: name -> (variant, weights file, model card)
SHIPPED = {"proxy": ("cloformer_xxs", WEIGHTS_DIR / "cloformer_xxs_proxy.safetensors",
                     WEIGHTS_DIR / "cloformer_xxs_proxy.json")}


def list_models() -> list[str]:
    return sorted(VARIANTS)


def model_card(name: str = "proxy") -> dict[str, Any]:
    """The model card JSON of a shipped checkpoint (task, classes, input size, accuracy, sha256)."""
    if name not in SHIPPED:
        raise UnknownModelError(f"no shipped checkpoint '{name}' (have: {', '.join(SHIPPED)})")
    card_path = SHIPPED[name][2]
    if not card_path.is_file():
        raise FileNotFoundError(f"shipped checkpoint '{name}' is missing its model card {card_path}")
    return json.loads(card_path.read_text())


def resolve_checkpoint(checkpoint: str | os.PathLike) -> Path:
    """'proxy' (or another shipped name) -> its file; anything else is a path."""
    if isinstance(checkpoint, str) and checkpoint in SHIPPED:
        return SHIPPED[checkpoint][1]
    return Path(checkpoint)


def checkpoint_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a .safetensors checkpoint (e.g. `input_size` written by compress.prune); {} for
    other formats."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors" or not path.is_file():
        return {}
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        return dict(f.metadata() or {})


def pretrained_cfg(name: str, checkpoint: str | os.PathLike | None = None) -> dict[str, Any]:
    """Input size, crop_pct, interpolation, mean, std, num_classes: the variant's, overlaid by a shipped
    checkpoint's model card or by an `input_size` in a .safetensors checkpoint's metadata."""
    cfg = dict(VARIANTS[name].pretrained_cfg)
    if isinstance(checkpoint, str) and checkpoint in SHIPPED:
        card = model_card(checkpoint)
        cfg.update(input_size=(3, card["input_size"], card["input_size"]), num_classes=card["num_classes"])
    elif checkpoint is not None:
        size = checkpoint_metadata(checkpoint).get("input_size")
        if size is not None:
            if not size.isdigit():
                raise CheckpointError(f"{checkpoint}: metadata input_size '{size}' is not an integer")
            cfg.update(input_size=(3, int(size), int(size)))
    return cfg


def _same_frame(pruned: tuple[BlockPlan, ...], stage: tuple[BlockPlan, ...]) -> bool:
    """A pruned stage keeps its widths and its last (downsampling) block; depth pruning may drop any of the blocks
    before it (all stride 1, dim to dim), never all of them."""
    def frame(b: BlockPlan) -> tuple[int, int, int]:
        return b.dim, b.out_dim, b.stride

    return (1 <= len(pruned) <= len(stage) and frame(pruned[-1]) == frame(stage[-1])
            and all(frame(b) == frame(stage[0]) for b in pruned[:-1]))


def create_model(name: str, num_classes: int | None = None, checkpoint: str | os.PathLike | None = None,
                 drop_path_rate: float = 0.0, allow_pruned: bool = False) -> CloFormer:
    """Build a CloFormer variant, optionally loading an official-format checkpoint strictly.

    num_classes defaults to the checkpoint's head (or 1000 without one). With allow_pruned, inner widths
    (FFN hidden, local channels, global heads) are read off the checkpoint; stage widths must still match.
    """
    if name not in VARIANTS:
        raise UnknownModelError(f"unknown model '{name}'; available: {', '.join(list_models())}")
    spec = VARIANTS[name]
    if checkpoint is None:
        model = CloFormer(plan_from_spec(spec, 1000 if num_classes is None else num_classes), drop_path_rate)
        model.pretrained_cfg = pretrained_cfg(name)
        return model.eval()
    path = resolve_checkpoint(checkpoint)
    sd = read_state_dict(path)
    head = sd.get("head.weight")
    ckpt_classes = int(head.shape[0]) if head is not None else 1000
    classes = ckpt_classes if num_classes is None else num_classes
    plan = plan_from_spec(spec, classes)
    if allow_pruned:
        widths = tuple(int(sd[f"layers.{i}.blocks.0.norm1.weight"].shape[0]) for i in range(len(spec.embed_dims))
                       if f"layers.{i}.blocks.0.norm1.weight" in sd)
        if widths != spec.embed_dims:
            raise CheckpointMismatchError(f"{path}: stage widths {widths} do not match '{name}' {spec.embed_dims}: "
                                          "a checkpoint for a different variant")
        try:
            pruned = plan_from_weights({k: np.empty(tuple(v.shape), dtype=np.uint8) for k, v in sd.items()},
                                       spec.head_dims)
        except (KeyError, ValueError) as e:
            raise CheckpointMismatchError(f"{path}: cannot read a CloFormer layout off the checkpoint: {e}") from e
        if pruned.stem_dim != plan.stem_dim or not all(
                _same_frame(p, o) for p, o in zip(pruned.blocks, plan.blocks, strict=True)):
            raise CheckpointMismatchError(f"{path}: stage widths/depths do not match '{name}'")
        plan = pruned if classes == ckpt_classes else plan
    model = CloFormer(plan, drop_path_rate)
    load_checkpoint(model, sd, source=str(path))
    model.pretrained_cfg = pretrained_cfg(name, checkpoint)
    return model.eval()
