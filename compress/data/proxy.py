"""The proxy classification task: which of 16 photographs (shipped with scikit-image) a crop came from.

No ImageNet and no published CloFormer weights exist here, so the project trains its own CloFormer-XXS
on this task. Each photo is split into two disjoint regions: the left (1 - VAL_FRACTION) of its width
feeds training (and the `sample` calibration source), the right VAL_FRACTION feeds the held-out
`proxy-val` split, so no pixel is shared between training and evaluation. Crop sides are drawn relative
to the photo's shorter side, so every class is seen at a similar scale.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .source import DataSource, Item
from .transforms import to_rgb

PHOTOS = ("astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png",
          "coffee.png", "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png",
          "motorcycle_left.png", "retina.jpg", "rocket.jpg")
CLASSES = [p.rsplit(".", 1)[0] for p in PHOTOS]
VAL_FRACTION = 0.25
VAL_SIDE = (0.10, 0.25)  # held-out crop side, as a fraction of the photo's shorter side
TRAIN_SIDE = (0.08, 0.40)  # training crop side range (wider than VAL_SIDE: scale augmentation)
VAL_PER_CLASS, VAL_SEED = 50, 2024
SELECTION_SEED = 20261126  # tools.sweep_quant --selection: more held-out crops, never the reported proxy-val
SAMPLE_PER_CLASS, SAMPLE_SEED = 20, 7
TRAIN_PER_CLASS, TRAIN_SEED = 150, 11


def photo_dir() -> Path:
    import skimage
    return Path(skimage.__file__).resolve().parent / "data"


@lru_cache(maxsize=1)
def photos() -> tuple[Image.Image, ...]:
    """The 16 photographs as RGB (grayscale ones converted)."""
    out = []
    for name in PHOTOS:
        path = photo_dir() / name
        if not path.is_file():
            raise FileNotFoundError(f"proxy photo {path} is missing (it ships with scikit-image)")
        with Image.open(path) as im:
            out.append(to_rgb(im).copy())  # copy: decoded pixels outlive the file handle
    return tuple(out)


def photo_hashes() -> dict[str, str]:
    return {n: hashlib.sha256((photo_dir() / n).read_bytes()).hexdigest() for n in PHOTOS}


def region(img: Image.Image, split: str) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the train or val region of a photo; the two never overlap."""
    w, h = img.size
    cut = round(w * (1 - VAL_FRACTION))
    return (0, 0, cut, h) if split == "train" else (cut, 0, w, h)


def random_boxes(img: Image.Image, split: str, n: int, rng: np.random.Generator,
                 shape: tuple[tuple[float, float], tuple[float, float]]) -> np.ndarray:
    """n crop boxes (left, top, right, bottom) inside the split's region; `shape` is (side range as a fraction of
    the short side, aspect-ratio range)."""
    side_range, aspect = shape
    left, t, r, b = region(img, split)
    short = min(img.size)
    side = rng.uniform(*side_range, n) * short
    ar = np.exp(rng.uniform(np.log(aspect[0]), np.log(aspect[1]), n))
    cw = np.minimum(np.maximum(side * np.sqrt(ar), 8), r - left)
    ch = np.minimum(np.maximum(side / np.sqrt(ar), 8), b - t)
    x0 = left + rng.uniform(0, 1, n) * (r - left - cw)
    y0 = t + rng.uniform(0, 1, n) * (b - t - ch)
    return np.rint(np.stack([x0, y0, x0 + cw, y0 + ch], axis=1)).astype(int)


def _crop_items(split: str, per_class: int, seed: int, side: tuple[float, float]) -> list[Item]:
    rng = np.random.default_rng(seed)
    items = []
    for label, (name, img) in enumerate(zip(PHOTOS, photos(), strict=True)):
        for box in random_boxes(img, split, per_class, rng, (side, (1.0, 1.0))):
            box_t = tuple(int(v) for v in box)
            items.append(Item(f"{name}@{box_t}", label, lambda img=img, box_t=box_t: img.crop(box_t)))
    return items


def val_source(size: int) -> DataSource:
    """`proxy-val`: 50 held-out crops per class from the right quarter of each photo (800 in all)."""
    return DataSource("proxy-val", _crop_items("val", VAL_PER_CLASS, VAL_SEED, VAL_SIDE), size, list(CLASSES))


def selection_source(size: int, per_class: int) -> DataSource:
    """More crops of the held-out regions, drawn with another seed: for choosing settings (tools.sweep_quant)
    without tuning them on the reported proxy-val. Same pixels as proxy-val, different boxes."""
    return DataSource(f"proxy-selection-{per_class}", _crop_items("val", per_class, SELECTION_SEED, VAL_SIDE), size,
                      list(CLASSES))


def sample_source(size: int) -> DataSource:
    """`sample`: the embedded calibration set, 20 crops per class from the training regions (320)."""
    return DataSource("sample", _crop_items("train", SAMPLE_PER_CLASS, SAMPLE_SEED, VAL_SIDE), size,
                      list(CLASSES))


def train_source(size: int) -> DataSource:
    """`proxy-train`: 150 crops per class from the training regions (fine-tuning after pruning)."""
    return DataSource("proxy-train", _crop_items("train", TRAIN_PER_CLASS, TRAIN_SEED, TRAIN_SIDE), size,
                      list(CLASSES))
