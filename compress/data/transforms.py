"""The evaluation transform, shared by every backend (torch, OpenVINO, NumPy): resize the shorter side to
int(size / crop_pct) with PIL bicubic, centre-crop size x size, RGB / 255, normalise with the ImageNet mean and
std -> float32 [3, size, size]. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from reference_np.specs import CROP_PCT, IMAGENET_MEAN, IMAGENET_STD, INTERPOLATION, check_input_size

from ..errors import InputError

# EXIF orientation (a phone photo tagged "rotate 90°"): 'ignore' preprocesses the pixels as stored, as timm's and
# torchvision's ImageFolder do and so as published ImageNet accuracies assume; 'apply' turns them upright first
EXIF_MODES = ("ignore", "apply")
DEFAULT_EXIF = "ignore"
EXIF_HELP = ("EXIF orientation of image files: ignore = preprocess the pixels as stored (timm, torchvision "
             "ImageFolder: what published ImageNet accuracies assume), apply = turn each image upright first, as a "
             "photo viewer shows it")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB: 16/32-bit integer and float images are rescaled, not clipped."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        if img.mode == "F" and a.max() <= 1.0:
            top = 1.0
        img = Image.fromarray(np.clip(np.rint(a * (255.0 / top)), 0, 255).astype(np.uint8))
    return img if img.mode == "RGB" else img.convert("RGB")


INTERPOLATIONS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}


def resize_shorter(img: Image.Image, short: int, interpolation: str = INTERPOLATION) -> Image.Image:
    """Shorter side -> `short` (the longer scaled as torchvision/timm do), PIL bicubic by default."""
    w, h = img.size
    if w <= h:
        size = (short, int(short * h / w))
    else:
        size = (int(short * w / h), short)
    return img if size == img.size else img.resize(size, INTERPOLATIONS[interpolation])


def center_crop(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    if w < size or h < size:
        raise ValueError(f"image {w}x{h} is smaller than the {size}x{size} crop")
    left, top = round((w - size) / 2.0), round((h - size) / 2.0)  # as torchvision CenterCrop
    return img.crop((left, top, left + size, top + size))


def check_exif(exif: str) -> str:
    """`exif` if it is one of EXIF_MODES, else an InputError naming the field."""
    if exif not in EXIF_MODES:
        raise InputError(f"exif must be one of {', '.join(EXIF_MODES)}; got {exif!r}", field="exif")
    return exif


def orient(img: Image.Image, exif: str = DEFAULT_EXIF) -> Image.Image:
    """The image as stored ('ignore') or as displayed ('apply': its EXIF orientation tag applied)."""
    check_exif(exif)
    return ImageOps.exif_transpose(img) if exif == "apply" else img


def normalize(rgb: np.ndarray, mean: tuple[float, ...] = IMAGENET_MEAN,
              std: tuple[float, ...] = IMAGENET_STD) -> np.ndarray:
    """uint8 [H,W,3] -> float32 [3,H,W], (x/255 - mean) / std."""
    x = rgb.astype(np.float32) / np.float32(255.0)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def crop(img: Image.Image, size: int, crop_pct: float = CROP_PCT, interpolation: str = INTERPOLATION) -> np.ndarray:
    """The evaluation transform up to its pixels: PIL image -> uint8 [size, size, 3] (resize, centre crop)."""
    check_input_size(size, size)
    return np.asarray(center_crop(resize_shorter(to_rgb(img), int(size / crop_pct), interpolation), size))


def preprocess(img: Image.Image, size: int, crop_pct: float = CROP_PCT) -> np.ndarray:
    """The evaluation transform with the reference's constants: PIL image -> float32 [3, size, size]."""
    return Preprocess(size, crop_pct)(img)


@dataclass(frozen=True)
class Preprocess:
    """A model's evaluation transform, resolved from its model card as timm's resolve_data_config does: resize the
    shorter side to int(size / crop_pct) (`interpolation`), centre-crop size x size, RGB / 255, (x - mean) / std."""

    size: int
    crop_pct: float = CROP_PCT
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    interpolation: str = INTERPOLATION

    def __post_init__(self) -> None:
        check_input_size(self.size, self.size)
        if self.interpolation not in INTERPOLATIONS:
            raise InputError(f"interpolation '{self.interpolation}': expected one of {', '.join(INTERPOLATIONS)}",
                             field="interpolation")
        if not 0 < self.crop_pct <= 1:
            raise InputError(f"crop_pct must be in (0, 1]; got {self.crop_pct}", field="crop_pct")

    @classmethod
    def from_card(cls, cfg: Any, size: int | None = None) -> Preprocess:
        """From a pretrained_cfg (input_size, crop_pct, mean, std, interpolation); `size` overrides its side."""
        return cls(size or int(cfg["input_size"][-1]), float(cfg.get("crop_pct", CROP_PCT)),
                   tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD)),
                   str(cfg.get("interpolation", INTERPOLATION)))

    def pixels(self, img: Image.Image) -> np.ndarray:
        """uint8 [size, size, 3]: the crop before normalisation."""
        return crop(img, self.size, self.crop_pct, self.interpolation)

    def __call__(self, img: Image.Image) -> np.ndarray:
        """float32 [3, size, size]."""
        return normalize(self.pixels(img), self.mean, self.std)
