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
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from reference_np.specs import CROP_PCT, IMAGENET_MEAN, IMAGENET_STD, check_input_size

from .errors import InputError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jfif"}
DEFAULT_DATA_ROOT = Path.home() / ".cache" / "cloformer" / "data"
SYNSETS_FILE = Path(__file__).resolve().parent / "resources" / "imagenet_synsets.txt"
# EXIF orientation (a phone photo tagged "rotate 90°"): 'ignore' preprocesses the pixels as stored, as timm's and
# torchvision's ImageFolder do and so as published ImageNet accuracies assume; 'apply' turns them upright first
EXIF_MODES = ("ignore", "apply")
DEFAULT_EXIF = "ignore"


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


def check_exif(exif: str) -> str:
    """`exif` if it is one of EXIF_MODES, else an InputError naming the field."""
    if exif not in EXIF_MODES:
        raise InputError(f"exif must be one of {', '.join(EXIF_MODES)}; got {exif!r}", field="exif")
    return exif


def orient(img: Image.Image, exif: str = DEFAULT_EXIF) -> Image.Image:
    """The image as stored ('ignore') or as displayed ('apply': its EXIF orientation tag applied)."""
    check_exif(exif)
    return ImageOps.exif_transpose(img) if exif == "apply" else img


def normalize(rgb: np.ndarray) -> np.ndarray:
    """uint8 [H,W,3] -> float32 [3,H,W], (x/255 - mean) / std."""
    x = rgb.astype(np.float32) / np.float32(255.0)
    x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def crop(img: Image.Image, size: int, crop_pct: float = CROP_PCT) -> np.ndarray:
    """The evaluation transform up to its pixels: PIL image -> uint8 [size, size, 3] (resize, centre crop)."""
    check_input_size(size, size)
    return np.asarray(center_crop(resize_shorter(to_rgb(img), int(size / crop_pct)), size))


def preprocess(img: Image.Image, size: int, crop_pct: float = CROP_PCT) -> np.ndarray:
    """The evaluation transform: PIL image -> float32 [3, size, size]."""
    return normalize(crop(img, size, crop_pct))


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


@dataclass
class DataSource:
    """Images with optional labels, yielding preprocessed arrays.

    `items` are candidates in the order they are used; with `limit`, iteration stops after that many
    readable images, so unreadable files never count toward a requested subset size (the next candidates
    fill in). After an iteration, `used` holds the items actually used and `skipped` the unreadable ones."""

    name: str
    items: list[Item]
    size: int
    classes: list[str] | None = None
    limit: int | None = None
    used: list[Item] = field(default_factory=list, repr=False)
    skipped: list[str] = field(default_factory=list, repr=False)
    warn: bool = True
    exif: str = DEFAULT_EXIF  # EXIF_MODES
    root: Path | None = None  # the folder it was read from (None: embedded crops)
    _done: bool = field(default=False, repr=False)

    def __len__(self) -> int:
        """Images a run uses: planned before an iteration, actually used after a complete one."""
        if self._done:
            return len(self.used)
        return len(self.items) if self.limit is None else min(self.limit, len(self.items))

    @property
    def labelled(self) -> bool:
        return all(it.label is not None for it in self.items)

    def planned(self) -> list[Item]:
        """The items a run uses: those of the last iteration, else the first `limit` candidates."""
        return list(self.used) if self._done else self.items[:self.limit]

    def _derive(self, name: str, items: list[Item], limit: int | None) -> DataSource:
        return DataSource(name, items, self.size, self.classes, limit, warn=self.warn, exif=self.exif, root=self.root)

    def subset(self, n: int | None, seed: int = 0) -> DataSource:
        """A seeded subset of n images: n candidates drawn at random (kept in source order), then the rest of
        the seeded permutation as replacements for unreadable ones."""
        if n is None or n >= len(self.items):
            return self._derive(self.name, list(self.items), self.limit)
        perm = np.random.default_rng(seed).permutation(len(self.items))
        order = [*np.sort(perm[:n]), *perm[n:]]
        return self._derive(self.name, [self.items[i] for i in order], n)

    def split(self, val_fraction: float, seed: int = 0) -> tuple[DataSource, DataSource]:
        """Disjoint (calibration, validation) parts: seeded, class-balanced when labelled (each class gives
        round(val_fraction * its count) images to validation, at least one when it has two or more). A
        limited source splits its planned images and shares its spare candidates between the parts."""
        if not 0 < val_fraction < 1:
            raise ValueError(f"validation fraction must be in (0, 1); got {val_fraction}")
        head = self.items if self.limit is None else self.items[:self.limit]
        tail = [] if self.limit is None else self.items[self.limit:]
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
            return (crop(img, self.size) if pixels else preprocess(img, self.size)), None
        except UNREADABLE as e:
            return None, f"{it.key}: {type(e).__name__}: {e}"

    def collect(self, loaded: Iterable[tuple[Item, np.ndarray | None, str | None]]
                ) -> Iterator[tuple[np.ndarray, int | None]]:
        """The iteration bookkeeping, whoever decodes (this thread or decoding threads, in candidate order):
        (array, label) of readable images until `limit`, `used`/`skipped` recorded, one counting warning.
        `loaded` is closed on every exit (limit reached, consumer stopped, exception), so decoders stop."""
        self.used, self.skipped, self._done = [], [], False
        try:
            for it, x, why in loaded:
                if self.limit is not None and len(self.used) >= self.limit:
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
        self._done = True
        if self.skipped and self.warn:
            warnings.warn(f"{self.name}: skipped {len(self.skipped)} unreadable image(s); used {len(self.used)} "
                          f"(first skipped: {self.skipped[0]})", stacklevel=3)

    def __iter__(self) -> Iterator[tuple[np.ndarray, int | None]]:
        """Preprocessed (float32 [3,S,S], label); unreadable images are skipped with one counting warning."""
        return self.decoded(workers=1)

    def decoded(self, workers: int | None = None, pixels: bool = False) -> Iterator[tuple[np.ndarray, int | None]]:
        """As iterating the source, with decoding and preprocessing spread over `workers` threads (default: all
        cores), in order; with `pixels`, the uint8 [S,S,3] crops (a model that normalises them itself, a quarter
        of the bytes). Threads, not processes: PIL and NumPy release the GIL while they decode, resize and
        normalise, and forking a process that already runs OpenVINO's and torch's thread pools can deadlock."""
        workers = (os.cpu_count() or 1) if workers is None else workers
        load = partial(self.load_item, pixels=pixels)
        if workers <= 1 or len(self.items) < 2:
            return self.collect((it, *load(it)) for it in self.items)
        return self.collect(_threaded(load, self.items, workers))

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

    def digest(self) -> str:
        """sha256 of the list of item keys a run uses (and their labels): names a data part in a report."""
        h = hashlib.sha256()
        for it in self.planned():
            # surrogateescape: a file name that is not valid UTF-8 hashes as its own bytes (os.fsencode)
            h.update(f"{it.key}\t{it.label}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()

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
        items = self.planned()
        return {"name": self.name, "n": len(items), "input_size": self.size, "exif": self.exif,
                "sha256_of_items": self.digest(),
                "skipped": len(self.skipped),
                "classes": self.classes if self.classes and len(self.classes) <= 64 else
                (len(self.classes) if self.classes else None),
                "items": [{"key": it.key, "label": it.label,
                           **({"sha256": it.sha256} if hashes and it.path is not None else {})} for it in items]}


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
