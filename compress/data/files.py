"""Files: hashing, decoding one image, the ImageNet class list, where named data lives."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from PIL import Image

DEFAULT_DATA_ROOT = Path.home() / ".cache" / "cloformer" / "data"
SYNSETS_FILE = Path(__file__).resolve().parent.parent / "resources" / "imagenet_synsets.txt"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@lru_cache(maxsize=1)
def imagenet_synsets() -> tuple[str, ...]:
    """The 1000 ILSVRC2012 WordNet ids; a wnid's index in this sorted list is its standard class index."""
    return tuple(SYNSETS_FILE.read_text().split())


def open_image(path: Path) -> Image.Image:
    """Open and decode fully, closing the file even when decoding fails (truncated files raise here)."""
    with Image.open(path) as img:
        img.load()
        return img


def data_root() -> Path:
    return Path(os.environ.get("CLOFORMER_DATA", DEFAULT_DATA_ROOT)).expanduser()
