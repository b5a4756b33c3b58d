"""Images: a source decoded and preprocessed once, in memory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .source import DataSource, Item, batched, items_digest, items_manifest, no_images
from .transforms import DEFAULT_EXIF, Preprocess


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
        from ..progress import Progress  # (tqdm, only when images are loaded)

        decoding = source.decode(workers)
        pairs = list(Progress(decoding, total=len(source), desc=desc or f"load {source.name}", unit="img",
                              leave=False))
        if not pairs:
            raise no_images(role, source.name)
        return cls(source.name, np.stack([x for x, _ in pairs]), tuple(y for _, y in pairs), tuple(decoding.used),
                   tuple(decoding.skipped), source.exif, source.size, source.classes, source.transform)
