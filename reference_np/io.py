"""Weights I/O without torch: .npz and .safetensors, official CloFormer key names."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def clean_state_dict(sd: Mapping[str, T]) -> dict[str, T]:
    """Checkpoint filter for foreign formats: unwrap {'model': sd} / {'state_dict': sd}, strip 'module.'."""
    for wrapper in ("model", "state_dict"):
        if wrapper in sd and isinstance(sd[wrapper], Mapping):
            sd = sd[wrapper]  # type: ignore[assignment]
            break
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}


def load_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load official-format weights from .npz or .safetensors as NumPy arrays (no torch needed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                sd = {k: z[k] for k in z.files}
        elif suffix == ".safetensors":
            from safetensors.numpy import load_file
            sd = load_file(str(path))
        else:
            raise ValueError(f"{path}: the NumPy reference reads .npz or .safetensors, not '{suffix}' "
                             "(convert .pth with `python -m tools.convert_checkpoint`)")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        if "reads .npz" in str(e):
            raise
        raise ValueError(f"{path}: not a readable {suffix} weights file ({e})") from e
    return clean_state_dict(sd)


def cast_weights(weights: Mapping[str, np.ndarray], dtype: np.dtype | type = np.float64) -> dict[str, np.ndarray]:
    """Floating-point entries cast to dtype; integer buffers (num_batches_tracked) kept as they are."""
    return {k: np.asarray(v, dtype) if np.asarray(v).dtype.kind == "f" else np.asarray(v) for k, v in weights.items()}


def check_finite(weights: Mapping[str, np.ndarray], source: str = "weights") -> None:
    """Raise ValueError naming every tensor that holds NaN or Inf (they would give garbage logits silently)."""
    bad = [f"{k} ({int(np.sum(~np.isfinite(v)))} of {v.size})" for k, v in weights.items()
           if np.asarray(v).dtype.kind == "f" and not np.all(np.isfinite(v))]
    if bad:
        raise ValueError(f"{source}: {len(bad)} tensor(s) hold NaN or Inf values: {', '.join(bad[:8])}"
                         + (" ..." if len(bad) > 8 else ""))


def _contiguous(a: np.ndarray) -> np.ndarray:
    """C-contiguous copy that keeps 0-d arrays 0-d (np.ascontiguousarray makes them 1-d)."""
    return np.require(np.asarray(a), requirements="C")


def save_weights(weights: Mapping[str, np.ndarray], path: str | os.PathLike,
                 metadata: Mapping[str, str] | None = None) -> Path:
    """Write .npz or .safetensors atomically (temporary name, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp" + path.suffix)
    arrays = {k: _contiguous(v) for k, v in weights.items()}
    try:
        if path.suffix == ".safetensors":
            from safetensors.numpy import save_file
            save_file(arrays, str(tmp), metadata=dict(metadata or {}))
        elif path.suffix == ".npz":
            np.savez(tmp, **arrays)
        else:
            raise ValueError(f"{path}: save as .npz or .safetensors")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def weights_sha256(weights: Mapping[str, np.ndarray]) -> str:
    """Content hash of a state dict (key, dtype, shape, bytes in key order): independent of file format."""
    import hashlib

    h = hashlib.sha256()
    for k in sorted(weights):
        a = _contiguous(weights[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()
