"""DataSource, the one interface of every source: an immutable plan of items (images with optional labels),
its subsets and splits, and one threaded pass of decoding over it."""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from .files import file_sha256, imagenet_synsets
from .transforms import DEFAULT_EXIF, Preprocess, orient


def no_images(role: str, name: str) -> InputError:
    """The one error for a source that gave nothing to work on (every image unreadable, or none at all)."""
    return InputError(f"{role} {name} yielded no readable images")


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
