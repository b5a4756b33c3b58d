"""Preprocessing and data sources, shared by every backend (torch, OpenVINO, NumPy). Torch-free.

Preprocessing is the authors' ImageNet evaluation transform: resize the shorter side to
int(size / crop_pct) with PIL bicubic, centre-crop size x size, RGB / 255, normalise with the ImageNet
mean and std -> float32 [3, size, size].

DataSource is the one interface of every source; named sources are registered in compress.sources,
which imports this module and compress.proxy (this module imports neither).
"""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from reference_np.specs import CROP_PCT, IMAGENET_MEAN, IMAGENET_STD, INTERPOLATION, check_input_size

from .errors import InputError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jfif"}
DEFAULT_DATA_ROOT = Path.home() / ".cache" / "cloformer" / "data"
SYNSETS_FILE = Path(__file__).resolve().parent / "resources" / "imagenet_synsets.txt"
# EXIF orientation (a phone photo tagged "rotate 90°"): 'ignore' preprocesses the pixels as stored, as timm's and
# torchvision's ImageFolder do and so as published ImageNet accuracies assume; 'apply' turns them upright first
EXIF_MODES = ("ignore", "apply")
DEFAULT_EXIF = "ignore"
EXIF_HELP = ("EXIF orientation of image files: ignore = preprocess the pixels as stored (timm, torchvision "
             "ImageFolder: what published ImageNet accuracies assume), apply = turn each image upright first, as a "
             "photo viewer shows it")


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


def no_images(role: str, name: str) -> InputError:
    """The one error for a source that gave nothing to work on (every image unreadable, or none at all)."""
    return InputError(f"{role} {name} yielded no readable images")


# ---------------------------------------------------------------- sources
@dataclass(frozen=True)
class Item:
    key: str  # file path, or a description of a crop
    label: int | None
    load: Callable[[], Image.Image]
    path: Path | None = None  # the file, when the item is one (hashed lazily: only items a run uses)

    @property
    def sha256(self) -> str | None:
        return file_sha256(self.path) if self.path is not None else None


UNREADABLE = (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError)


def items_digest(items: Iterable[Item]) -> str:
    """sha256 of a list of item keys (and their labels): names a data part in a report."""
    h = hashlib.sha256()
    for it in items:
        # surrogateescape: a file name that is not valid UTF-8 hashes as its own bytes (os.fsencode)
        h.update(f"{it.key}\t{it.label}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def items_manifest(name: str, items: Iterable[Item], size: int, exif: str, classes: Any, skipped: int,
                   hashes: bool = True) -> dict[str, object]:
    items = list(items)
    return {"name": name, "n": len(items), "input_size": size, "exif": exif, "sha256_of_items": items_digest(items),
            "skipped": skipped,
            "classes": list(classes) if classes and len(classes) <= 64 else (len(classes) if classes else None),
            "items": [{"key": it.key, "label": it.label,
                       **({"sha256": it.sha256} if hashes and it.path is not None else {})} for it in items]}


@dataclass(frozen=True)
class DataSource:
    """Which images, with optional labels: an immutable plan. Decoding it (`decode`) yields preprocessed arrays
    and records what it used and skipped, without changing the plan.

    `items` are candidates in the order they are used; with `limit`, decoding stops after that many readable
    images, so unreadable files never count toward a requested subset size (the next candidates fill in)."""

    name: str
    items: tuple[Item, ...]
    size: int
    classes: list[str] | None = None
    limit: int | None = None
    warn: bool = True
    exif: str = DEFAULT_EXIF  # EXIF_MODES
    root: Path | None = None  # the folder it was read from (None: embedded crops)
    transform: Preprocess | None = None  # the model card's (None: the reference's constants at `size`)

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))
        if self.transform is None:
            object.__setattr__(self, "transform", Preprocess(self.size))
        elif self.transform.size != self.size:
            raise ValueError(f"{self.name}: transform of side {self.transform.size} for a source of side {self.size}")

    def __len__(self) -> int:
        """Images the plan uses (fewer when too few of its candidates are readable)."""
        return len(self.items) if self.limit is None else min(self.limit, len(self.items))

    @property
    def labelled(self) -> bool:
        return all(it.label is not None for it in self.items)

    def planned(self) -> list[Item]:
        """The items the plan uses when every one of them is readable: the first `limit` candidates."""
        return list(self.items[:self.limit])

    def _derive(self, name: str, items: Iterable[Item], limit: int | None) -> DataSource:
        return replace(self, name=name, items=tuple(items), limit=limit)

    def subset(self, n: int | None, seed: int = 0) -> DataSource:
        """A seeded subset of n images: n candidates drawn at random (kept in source order), then the rest of
        the seeded permutation as replacements for unreadable ones."""
        if n is None or n >= len(self.items):
            return self._derive(self.name, self.items, self.limit)
        perm = np.random.default_rng(seed).permutation(len(self.items))
        order = [*np.sort(perm[:n]), *perm[n:]]
        return self._derive(self.name, [self.items[i] for i in order], n)

    def split(self, val_fraction: float, seed: int = 0) -> tuple[DataSource, DataSource]:
        """Disjoint (calibration, validation) parts: seeded, class-balanced when labelled (each class gives
        round(val_fraction * its count) images to validation, at least one when it has two or more). A
        limited source splits its planned images and shares its spare candidates between the parts."""
        if not 0 < val_fraction < 1:
            raise InputError(f"val_fraction must be in (0, 1); got {val_fraction}", field="val_fraction")
        head = list(self.items[:self.limit])
        tail = list(self.items[len(head):])
        rng = np.random.default_rng(seed)
        groups: dict[int | None, list[int]] = {}
        for i, it in enumerate(head):
            groups.setdefault(it.label if self.labelled else None, []).append(i)
        val_set: set[int] = set()
        for idx in groups.values():
            k = round(val_fraction * len(idx))
            k = min(max(k, 1), len(idx) - 1) if len(idx) >= 2 else k
            val_set.update(int(i) for i in rng.permutation(idx)[:k])
        calib = [it for i, it in enumerate(head) if i not in val_set]
        val = [it for i, it in enumerate(head) if i in val_set]
        if not calib or not val:
            raise InputError(f"data source {self.name} ({len(head)} images) is too small to split into "
                             "calibration and validation parts")
        limited = self.limit is not None
        return (self._derive(f"{self.name} [calibration part]", calib + tail[0::2], len(calib) if limited else None),
                self._derive(f"{self.name} [validation part]", val + tail[1::2], len(val) if limited else None))

    def load_item(self, it: Item, pixels: bool = False) -> tuple[np.ndarray | None, str | None]:
        """(preprocessed float32 [3,S,S], None) (with `pixels`: the uint8 [S,S,3] crop before normalisation), or
        (None, why) for an unreadable image."""
        try:
            img = orient(it.load(), self.exif)
            return (self.transform.pixels(img) if pixels else self.transform(img)), None
        except UNREADABLE as e:
            return None, f"{it.key}: {type(e).__name__}: {e}"

    def decode(self, workers: int | None = None, pixels: bool = False) -> Decoding:
        """One pass of decoding: preprocessed (float32 [3,S,S], label) of readable images, unreadable ones skipped
        with one counting warning, spread over `workers` threads (default: all cores), in order; with `pixels`, the
        uint8 [S,S,3] crops (a model that normalises them itself, a quarter of the bytes). Threads, not processes:
        PIL and NumPy release the GIL while they decode, resize and normalise, and forking a process that already
        runs OpenVINO's and torch's thread pools can deadlock."""
        workers = (os.cpu_count() or 1) if workers is None else workers
        load = partial(self.load_item, pixels=pixels)
        if workers <= 1 or len(self.items) < 2:
            return Decoding(self, ((it, *load(it)) for it in self.items))
        return Decoding(self, _threaded(load, list(self.items), workers))

    def __iter__(self) -> Iterator[tuple[np.ndarray, int | None]]:
        """A pass of decoding in this thread (`decode` keeps the record of what it used)."""
        return iter(self.decode(workers=1))

    def batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        return batched(self, batch_size)

    def digest(self) -> str:
        """sha256 of the planned items (a decoding's own digest names the ones it used)."""
        return items_digest(self.planned())

    def check_labels(self, num_classes: int) -> None:
        """Every label must be a class of the model, or accuracies would be computed against wrong labels:
        a source with its own class list (a folder of named classes, the proxy task) must have as many
        classes as the model; WordNet-id folders carry the 1000 ILSVRC2012 classes."""
        if self.labelled and self.classes is not None and len(self.classes) != num_classes:
            if tuple(self.classes) == imagenet_synsets():
                raise InputError(f"data source {self.name}: WordNet-id folders are scored against the 1000 ImageNet "
                                 f"classes; this model has {num_classes} (use data of the model's classes, or "
                                 "unlabelled data)")
            raise InputError(
                f"data source {self.name} has {len(self.classes)} classes ({', '.join(self.classes[:4])}, ...) but "
                f"the model has {num_classes}; its labels cannot be scored against this model (use data of the "
                "model's classes, e.g. WordNet-id folders for an ImageNet checkpoint, or unlabelled data)")
        bad = sorted({it.label for it in self.items if it.label is not None and not 0 <= it.label < num_classes})
        if bad:
            names = [self.classes[b] if self.classes and b < len(self.classes) else str(b) for b in bad[:5]]
            raise InputError(
                f"data source {self.name}: labels {', '.join(map(str, bad[:5]))} ({', '.join(names)}) are outside "
                f"the model's {num_classes} classes; its classes cannot be scored against this data (use a "
                "checkpoint trained on these classes, or unlabelled data)")

    def manifest(self, hashes: bool = True) -> dict[str, object]:
        return items_manifest(self.name, self.planned(), self.size, self.exif, self.classes, 0, hashes)


class Decoding:
    """One pass of decoding over a source's plan. Iterating it yields (array, label) of readable images until the
    plan's limit; afterwards `used` and `skipped` say what it took, and `digest`/`manifest` record it. `loaded`
    (item, array or None, why) is closed on every exit (limit reached, consumer stopped, exception), so decoders
    stop."""

    def __init__(self, source: DataSource, loaded: Iterator[tuple[Item, np.ndarray | None, str | None]]) -> None:
        self.source, self._loaded = source, loaded
        self.used: list[Item] = []
        self.skipped: list[str] = []
        self.started = self.complete = False

    def __iter__(self) -> Iterator[tuple[np.ndarray, int | None]]:
        if self.started:  # (the decoders behind `loaded` are consumed, or closed, by the first pass)
            raise RuntimeError(f"a decoding of {self.source.name} is one pass; call decode() again")
        self.started = True
        return self._pass()

    def _pass(self) -> Iterator[tuple[np.ndarray, int | None]]:
        src, loaded = self.source, self._loaded
        try:
            for it, x, why in loaded:
                if src.limit is not None and len(self.used) >= src.limit:
                    break
                if x is None:
                    self.skipped.append(why)
                    continue
                self.used.append(it)
                yield x, it.label
        finally:
            close = getattr(loaded, "close", None)
            if close is not None:
                close()
        self.complete = True
        if self.skipped and src.warn:
            warnings.warn(f"{src.name}: skipped {len(self.skipped)} unreadable image(s); used {len(self.used)} "
                          f"(first skipped: {self.skipped[0]})", stacklevel=3)

    def digest(self) -> str:
        return items_digest(self.used)

    def manifest(self, hashes: bool = True) -> dict[str, object]:
        s = self.source
        return items_manifest(s.name, self.used, s.size, s.exif, s.classes, len(self.skipped), hashes)


def batched(pairs: Iterable[tuple[np.ndarray, int | None]], batch_size: int
            ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """[B,3,S,S] batches of (image, label) pairs (the last may be smaller), with their labels, or None for a
    batch where an image has none."""
    xs: list[np.ndarray] = []
    ys: list[int | None] = []
    for x, y in pairs:
        xs.append(x)
        ys.append(y)
        if len(xs) == batch_size:
            yield np.stack(xs), (None if None in ys else np.asarray(ys))
            xs, ys = [], []
    if xs:
        yield np.stack(xs), (None if None in ys else np.asarray(ys))


@dataclass(frozen=True)
class Images:
    """A source's images decoded and preprocessed once (in parallel threads), in memory: what calibration,
    evaluation and fine-tuning read, with the record of what decoding used and skipped."""

    name: str
    xs: np.ndarray  # float32 [N,3,S,S], normalised
    ys: tuple[int | None, ...]
    items: tuple[Item, ...] = ()  # the source's items these are, in order
    skipped: tuple[str, ...] = ()
    exif: str = DEFAULT_EXIF  # how the source read EXIF orientation (EXIF_MODES)
    size: int = 0
    classes: list[str] | None = None
    transform: Preprocess | None = None  # what made xs from the images

    def digest(self) -> str:
        """sha256 of the items held: names this data in a report."""
        return items_digest(self.items)

    def manifest(self, hashes: bool = True) -> dict[str, object]:
        return items_manifest(self.name, self.items, self.size, self.exif, self.classes, len(self.skipped), hashes)

    @property
    def labelled(self) -> bool:
        return None not in self.ys

    def __len__(self) -> int:
        return len(self.xs)

    def __iter__(self) -> Iterator[tuple[np.ndarray, int | None]]:
        yield from zip(self.xs, self.ys, strict=True)

    def batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        return batched(self, batch_size)

    @classmethod
    def of(cls, source: DataSource, workers: int | None = None, role: str = "data source",
           desc: str | None = None) -> Images:
        """`source` decoded (threads: `workers`, default all cores); an error naming `role` when nothing in it is
        readable."""
        from .progress import Progress  # (tqdm, only when images are loaded)

        decoding = source.decode(workers)
        pairs = list(Progress(decoding, total=len(source), desc=desc or f"load {source.name}", unit="img",
                              leave=False))
        if not pairs:
            raise no_images(role, source.name)
        return cls(source.name, np.stack([x for x, _ in pairs]), tuple(y for _, y in pairs), tuple(decoding.used),
                   tuple(decoding.skipped), source.exif, source.size, source.classes, source.transform)


def _threaded(load: Callable[[Item], tuple[np.ndarray | None, str | None]], items: list[Item], workers: int
              ) -> Iterator[tuple[Item, np.ndarray | None, str | None]]:
    """(item, *load(item)) in order, computed ahead by a thread pool. At most 4 x workers images are in flight,
    so memory stays bounded and stopping early wastes little: on close or on an exception the queued loads are
    cancelled and the pool waits only for the few already running (one image decode each), then ends."""
    pending: deque[tuple[Item, Future]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="preprocess") as pool:
        try:
            for it in items:
                pending.append((it, pool.submit(load, it)))
                if len(pending) >= 4 * workers:
                    head, fut = pending.popleft()
                    yield head, *fut.result()
            while pending:
                head, fut = pending.popleft()
                yield head, *fut.result()
        finally:
            for _, fut in pending:
                fut.cancel()


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


def _broken_link(e: os.DirEntry) -> str | None:
    """Why a symbolic link cannot be read as data ('dangling link to X', 'link loop', 'link to its own
    ancestor X'), or None for anything else. One stat per link (cached by DirEntry); a resolve only for links to
    folders, which are few."""
    if not e.is_symlink():
        return None
    try:
        st = e.stat()
    except FileNotFoundError:
        return f"dangling link to {os.readlink(e.path)}"
    except OSError:  # ELOOP
        return "link loop"
    if stat.S_ISDIR(st.st_mode):
        target, parent = Path(e.path).resolve(), Path(e.path).parent.resolve()
        if parent == target or target in parent.parents:
            return f"link to its own ancestor {target}"
    return None


def scan_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    """(image files, visible subfolders) of a folder, sorted; one scandir, no per-file stat beyond it. Hidden
    entries (dot names: .ipynb_checkpoints/, .DS_Store) are ignored: the one rule of every folder reader.
    Symbolic links that lead nowhere (dangling, a loop, a folder's own ancestor) are skipped with one warning
    that names them: counted as a class or followed, they would mislabel or never end."""
    files, dirs, broken = [], [], []
    with os.scandir(folder) as it:
        for e in it:
            if e.name.startswith("."):
                continue
            why = _broken_link(e)
            if why is not None:
                broken.append(f"{e.path} ({why})")
            elif e.is_dir():
                dirs.append(Path(e.path))
            elif os.path.splitext(e.name)[1].lower() in IMAGE_EXTS and e.is_file():
                files.append(Path(e.path))
    if broken:
        warnings.warn(f"{folder}: skipped {len(broken)} symbolic link(s) that lead nowhere: "
                      f"{'; '.join(sorted(broken)[:3])}{'; ...' if len(broken) > 3 else ''}", stacklevel=2)
    return sorted(files), sorted(dirs)


def is_output_folder(folder: Path) -> bool:
    """A folder this toolkit wrote (compress.quantize/prune): a report.json beside at least one IR."""
    return (folder / "report.json").is_file() and any(folder.glob("*.xml"))


def folder_source(root: str | os.PathLike, size: int, name: str | None = None) -> DataSource:
    """ImageNet layout (class subfolders named by WordNet id map to the ILSVRC2012 indices; other names are
    numbered in sorted order) or a flat folder of images (unlabelled). A folder that mixes WordNet ids with
    other class names, or class folders with loose images, is refused: its labels would be ambiguous."""
    root = Path(root)
    if not root.exists():
        if root.is_symlink():
            raise FileNotFoundError(f"data source {root} is a dangling symbolic link (to {os.readlink(root)})")
        raise FileNotFoundError(f"data source folder not found: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"data source is not a folder: {root}")
    files, subdirs = scan_folder(root)
    ours = [d for d in subdirs if is_output_folder(d)]
    if ours:
        warnings.warn(f"{root}: skipped {len(ours)} output folder(s) of this toolkit (report.json beside its IRs): "
                      f"{', '.join(d.name for d in ours[:3])}{', ...' if len(ours) > 3 else ''}", stacklevel=2)
        subdirs = [d for d in subdirs if d not in ours]
    if subdirs:
        synsets = imagenet_synsets()
        wnid = [d.name for d in subdirs if d.name in synsets]
        other = [d.name for d in subdirs if d.name not in synsets]
        if wnid and other:
            raise InputError(
                f"data source {root} mixes WordNet-id class folders ({', '.join(wnid[:3])}, ...: ILSVRC2012 indices) "
                f"with other names ({', '.join(other[:3])}{', ...' if len(other) > 3 else ''}: sorted order); the "
                "labels would be ambiguous. Use one scheme for every class folder")
        if files:
            raise InputError(f"data source {root} has both class subfolders and {len(files)} loose image(s) "
                             f"(e.g. {files[0].name}); move the images into class folders or remove the folders")
        if wnid:
            index, classes = {s: i for i, s in enumerate(synsets)}, list(synsets)
        else:
            index, classes = {d: i for i, d in enumerate(other)}, list(other)
        items = [Item(str(f), index[d.name], lambda f=f: open_image(f), f) for d in subdirs for f in scan_folder(d)[0]]
    else:
        items = [Item(str(f), None, lambda f=f: open_image(f), f) for f in files]
        classes = None
    if not items:
        raise InputError(f"data source {root} holds no images ({', '.join(sorted(IMAGE_EXTS))})")
    return DataSource(name or str(root), items, size, classes, root=root)


def data_root() -> Path:
    return Path(os.environ.get("CLOFORMER_DATA", DEFAULT_DATA_ROOT)).expanduser()
