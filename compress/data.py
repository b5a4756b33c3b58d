"""Preprocessing and data sources, shared by every backend (torch, OpenVINO, NumPy). Torch-free.

Preprocessing is the authors' ImageNet evaluation transform: resize the shorter side to
int(size / crop_pct) with PIL bicubic, centre-crop size x size, RGB / 255, normalise with the ImageNet
mean and std -> float32 [3, size, size].

Sources (resolve_source): `sample` (embedded photographs), `proxy-val` (held-out split of the proxy
task), `proxy-train` (its training regions, for fine-tuning), `imagenet_subset` (under $CLOFORMER_DATA),
or a folder: ImageNet layout (one subfolder per class) or a flat folder of images (unlabelled).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from reference_np.specs import CROP_PCT, IMAGENET_MEAN, IMAGENET_STD, check_input_size

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jfif"}
DEFAULT_DATA_ROOT = Path.home() / ".cache" / "cloformer" / "data"
SYNSETS_FILE = Path(__file__).resolve().parent / "resources" / "imagenet_synsets.txt"


# ---------------------------------------------------------------- preprocessing
def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB: 16/32-bit integer and float images are rescaled, not clipped."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        if img.mode == "F" and a.max() <= 1.0:
            top = 1.0
        img = Image.fromarray(np.clip(np.rint(a * (255.0 / top)), 0, 255).astype(np.uint8))
    return img if img.mode == "RGB" else img.convert("RGB")


def resize_shorter(img: Image.Image, short: int) -> Image.Image:
    """Shorter side -> `short` (the longer scaled as torchvision/timm do), PIL bicubic."""
    w, h = img.size
    if w <= h:
        size = (short, int(short * h / w))
    else:
        size = (int(short * w / h), short)
    return img if size == img.size else img.resize(size, Image.BICUBIC)


def center_crop(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    if w < size or h < size:
        raise ValueError(f"image {w}x{h} is smaller than the {size}x{size} crop")
    left, top = round((w - size) / 2.0), round((h - size) / 2.0)  # as torchvision CenterCrop
    return img.crop((left, top, left + size, top + size))


def normalize(rgb: np.ndarray) -> np.ndarray:
    """uint8 [H,W,3] -> float32 [3,H,W], (x/255 - mean) / std."""
    x = rgb.astype(np.float32) / np.float32(255.0)
    x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def preprocess(img: Image.Image, size: int, crop_pct: float = CROP_PCT) -> np.ndarray:
    """The evaluation transform: PIL image -> float32 [3, size, size]."""
    check_input_size(size, size)
    img = center_crop(resize_shorter(to_rgb(img), int(size / crop_pct)), size)
    return normalize(np.asarray(img))


# ---------------------------------------------------------------- sources
@dataclass(frozen=True)
class Item:
    key: str  # file path or a description of a crop
    label: int | None
    load: Callable[[], Image.Image]
    sha256: str | None = None  # of the file bytes, when the item is a file


@dataclass
class DataSource:
    """A list of images with optional labels, yielding preprocessed arrays."""

    name: str
    items: list[Item]
    size: int
    classes: list[str] | None = None
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labelled(self) -> bool:
        return all(it.label is not None for it in self.items)

    def subset(self, n: int | None, seed: int = 0) -> DataSource:
        """A seeded, order-preserving random subset of n items (all when n is None or >= len)."""
        if n is None or n >= len(self.items):
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self.items), n, replace=False))
        return DataSource(self.name, [self.items[i] for i in keep], self.size, self.classes)

    def __iter__(self) -> Iterator[tuple[np.ndarray, int | None]]:
        """Preprocessed (float32 [3,S,S], label); unreadable images are skipped with one warning."""
        self.skipped = []
        for it in self.items:
            try:
                x = preprocess(it.load(), self.size)
            except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
                self.skipped.append(f"{it.key}: {type(e).__name__}: {e}")
                continue
            yield x, it.label
        if self.skipped:
            warnings.warn(f"{self.name}: skipped {len(self.skipped)} unreadable image(s) of {len(self.items)} "
                          f"(first: {self.skipped[0]})", stacklevel=2)

    def batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        xs: list[np.ndarray] = []
        ys: list[int | None] = []
        for x, y in self:
            xs.append(x)
            ys.append(y)
            if len(xs) == batch_size:
                yield np.stack(xs), (None if None in ys else np.asarray(ys))
                xs, ys = [], []
        if xs:
            yield np.stack(xs), (None if None in ys else np.asarray(ys))

    def manifest(self) -> dict[str, object]:
        return {"name": self.name, "n": len(self.items), "input_size": self.size,
                "classes": self.classes if self.classes and len(self.classes) <= 64 else
                (len(self.classes) if self.classes else None),
                "items": [{"key": it.key, "label": it.label, **({"sha256": it.sha256} if it.sha256 else {})}
                          for it in self.items]}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@lru_cache(maxsize=1)
def imagenet_synsets() -> tuple[str, ...]:
    """The 1000 ILSVRC2012 WordNet ids; a wnid's index in this sorted list is its standard class index."""
    return tuple(SYNSETS_FILE.read_text().split())


def open_image(path: Path) -> Image.Image:
    """Open and decode fully, closing the file even when decoding fails (truncated files raise here)."""
    with Image.open(path) as img:
        img.load()
        return img


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def folder_source(root: str | os.PathLike, size: int, name: str | None = None,
                  hashes: bool = True) -> DataSource:
    """ImageNet layout (class subfolders; WordNet-id names map to ILSVRC2012 indices, others to sorted
    order) or a flat folder of images (unlabelled)."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"data source folder not found: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"data source is not a folder: {root}")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    digest = (lambda p: file_sha256(p)) if hashes else (lambda p: None)
    if subdirs:
        synsets = imagenet_synsets()
        if all(d.name in synsets for d in subdirs):
            index, classes = {s: i for i, s in enumerate(synsets)}, list(synsets)
        else:
            index, classes = {d.name: i for i, d in enumerate(subdirs)}, [d.name for d in subdirs]
        items = [Item(str(f), index[d.name], lambda f=f: open_image(f), digest(f))
                 for d in subdirs for f in _image_files(d)]
    else:
        items = [Item(str(f), None, lambda f=f: open_image(f), digest(f)) for f in _image_files(root)]
        classes = None
    if not items:
        raise ValueError(f"data source {root} holds no images ({', '.join(sorted(IMAGE_EXTS))})")
    return DataSource(name or str(root), items, size, classes)


def data_root() -> Path:
    return Path(os.environ.get("CLOFORMER_DATA", DEFAULT_DATA_ROOT)).expanduser()


NAMED_SOURCES = ("sample", "proxy-val", "proxy-train", "imagenet_subset")


def resolve_source(spec: str | os.PathLike, size: int, limit: int | None = None, seed: int = 0) -> DataSource:
    """A data source by name (`sample`, `proxy-val`, `imagenet_subset`) or folder path."""
    check_input_size(size, size)
    if spec == "sample":
        from compress import proxy
        src = proxy.sample_source(size)
    elif spec in ("proxy-val", "proxy-train"):
        from compress import proxy
        src = proxy.val_source(size) if spec == "proxy-val" else proxy.train_source(size)
    elif spec == "imagenet_subset":
        root = data_root() / "imagenet_subset"
        if not root.is_dir():
            raise FileNotFoundError(
                f"data source 'imagenet_subset' not found at {root} (data root: $CLOFORMER_DATA, default "
                f"{DEFAULT_DATA_ROOT}). Build it from your ILSVRC2012 validation folder with:\n"
                f"  python -m tools.make_imagenet_subset --src /path/to/ILSVRC2012/val --per-class 1")
        src = folder_source(root, size, name="imagenet_subset")
    else:
        src = folder_source(spec, size)
    return src.subset(limit, seed)
