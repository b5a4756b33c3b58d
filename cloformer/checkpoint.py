"""Checkpoint loading in the official key format: .pth/.pt ({'model': sd} or bare sd) or .safetensors."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from reference_np.io import clean_state_dict


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable, of an unknown format, holding other objects, wrong
    layout. The user's input, as opposed to a bug (callers map exactly this to 'bad input')."""


class CheckpointMismatchError(CheckpointError):
    """A state dict that does not fit the model: lists missing, unexpected and wrong-shape keys."""


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint {path} is a folder; pass the checkpoint file inside it "
                                "(.pth, .pt, .safetensors or .npz)")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            sd = load_file(str(path))
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(f"{path}: not a readable .safetensors file ({e})") from e
    elif suffix in (".pth", ".pt", ".bin", ".ckpt"):
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            msg = str(e)
            first = msg.splitlines()[0][:200] if msg else type(e).__name__
            if "Unsupported global" in msg:  # a real checkpoint that pickles other objects (e.g. a yacs config)
                raise CheckpointError(
                    f"{path}: a PyTorch checkpoint that holds objects other than tensors ({first}). If you trust "
                    "it (e.g. the authors' training checkpoint with its yacs config), convert it once with "
                    "`python -m tools.convert_checkpoint --trust-pickle SRC DST.safetensors`") from e
            detail = next((ln.strip() for ln in msg.splitlines()
                           if "Unsupported operand" in ln or "load key" in ln), first)
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {detail})") from e
    elif suffix == ".npz":
        import zipfile

        import numpy as np
        try:
            with np.load(path, allow_pickle=False) as z:
                sd = {k: torch.from_numpy(z[k]) for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise CheckpointError(f"{path}: not a readable .npz checkpoint ({type(e).__name__}: {e})") from e
    else:
        raise CheckpointError(f"{path}: unknown checkpoint format '{suffix}' (use .pth, .pt, .safetensors or .npz)")
    if not isinstance(sd, Mapping):
        raise CheckpointError(f"{path}: expected a state dict or {{'model': state_dict}}, got {type(sd).__name__}")
    sd = clean_state_dict(sd)
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: entries are not tensors: {bad[:5]}")
    return sd


def check_state_dict(model: nn.Module, sd: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Raise one CheckpointMismatchError naming every missing, unexpected and wrong-shape key."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        lines = [f"{source} does not match {type(model).__name__} "
                 f"({len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} wrong-shape keys)"]
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                lines.append(f"  {title}: " + ", ".join(keys[:20]) + (" ..." if len(keys) > 20 else ""))
        raise CheckpointMismatchError("\n".join(lines))


def load_checkpoint(model: nn.Module, sd: Mapping[str, torch.Tensor], source: str = "checkpoint") -> nn.Module:
    check_state_dict(model, sd, source)
    model.load_state_dict(sd, strict=True)
    return model
