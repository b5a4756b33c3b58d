"""Named data sources, registered in one place (this module imports the data modules and the proxy task; none of
them imports it), and the calibration/validation split rules.

    resolve_source("sample" | "proxy-val" | "proxy-train" | "imagenet_subset" | <folder>, size)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace

from reference_np.specs import check_input_size

from ..errors import InputError
from ..options import check_count, option
from . import (
    DEFAULT_DATA_ROOT,
    DEFAULT_EXIF,
    EXIF_HELP,
    EXIF_MODES,
    DataSource,
    Item,
    Preprocess,
    check_exif,
    data_root,
    file_sha256,
    folder_source,
    proxy,
)


def imagenet_subset(size: int) -> DataSource:
    root = data_root() / "imagenet_subset"
    if not root.is_dir():
        raise InputError(
            f"data source 'imagenet_subset' not found at {root} (data root: $CLOFORMER_DATA, default "
            f"{DEFAULT_DATA_ROOT}); build it from your ILSVRC2012 validation folder: "
            "python -m tools.make_imagenet_subset --src /path/to/ILSVRC2012/val --per-class 1")
    return folder_source(root, size, name="imagenet_subset")


SELECTION_PER_CLASS = 200  # the selection set of tools.sweep_quant --selection and the README's choices
# name -> (factory, help). Every CLI's --calib/--val/--data accepts these names or a folder.
NAMED_SOURCES: dict[str, tuple[Callable[[int], DataSource], str]] = {
    "sample": (proxy.sample_source, "320 crops of the proxy photographs' training regions (embedded default)"),
    "proxy-val": (proxy.val_source, "the proxy task's held-out split: 800 crops sharing no pixel with training"),
    "proxy-train": (proxy.train_source, "2,400 crops of the training regions (fine-tuning after pruning, QAT)"),
    "selection": (lambda size: proxy.selection_source(size, SELECTION_PER_CLASS),
                  "3,200 held-out crops drawn with another seed: where defaults are chosen, never proxy-val"),
    "imagenet_subset": (imagenet_subset, "$CLOFORMER_DATA/imagenet_subset (tools.make_imagenet_subset)"),
}


def resolve_source(spec: str | os.PathLike, size: int | Preprocess, limit: int | None = None, seed: int = 0,
                   exif: str = DEFAULT_EXIF) -> DataSource:
    """A data source by registered name or folder path, preprocessed at `size` (a side, with the reference's
    constants) or by a model card's transform (`LoadedModel.transform`, timm's resolve_data_config); `limit` takes a
    seeded subset of that many images; `exif` (data.EXIF_MODES) says whether images are turned upright by their
    EXIF orientation before preprocessing. Every problem with it (missing, not a folder, no images, mixed
    layout) is an InputError naming it."""
    if not isinstance(size, Preprocess):
        check_input_size(size, size)
    transform = size if isinstance(size, Preprocess) else Preprocess(size)
    size = transform.size
    check_exif(exif)
    try:
        if isinstance(spec, str) and spec in NAMED_SOURCES:
            src = NAMED_SOURCES[spec][0](size)
        else:
            src = folder_source(spec, size)
    except (FileNotFoundError, NotADirectoryError, PermissionError) as e:
        raise InputError(str(e)) from None
    return replace(src, exif=exif, transform=transform).subset(limit, seed)


def source_help() -> str:
    return " | ".join(NAMED_SOURCES) + " | an image folder"


# ---------------------------------------------------------------- calibration / validation parts
@dataclass
class JobData:
    """The data sources of a job, not yet decoded (report.DataPart is the record of one once used): calibration
    images and a validation set that shares none of them. With accuracy control, validation is further split into
    a tuning part (NNCF picks the quantizers to revert on it) and a held-out part (the reported drop)."""

    calibration: DataSource
    validation: DataSource
    rule: str  # how the parts were formed, for the report
    tuning: DataSource | None = None
    overlap: int = 0  # images shared by calibration and validation (only with allow_overlap)


def _fingerprints(src: DataSource) -> dict[tuple[str, int], list[Item]]:
    """(basename, size) -> the file items with it: cheap candidates for "the same image" (copies made by
    tools.make_imagenet_subset keep the original names); crops are keyed by their description."""
    out: dict[tuple[str, int], list[Item]] = {}
    for it in src.items:
        if it.path is not None:
            try:
                out.setdefault((it.path.name, it.path.stat().st_size), []).append(it)
            except OSError:
                continue
        else:
            out.setdefault((it.key, -1), []).append(it)
    return out


def shared_items(a: DataSource, b: DataSource) -> list[str]:
    """Keys of `a`'s items that are also in `b`: the same crop, the same file, or a file with the same name,
    size and sha256 (a copy or a link)."""
    fb = _fingerprints(b)
    out = []
    for fp, items in _fingerprints(a).items():
        for ia in items:
            if any(ia.path is None or os.path.realpath(ia.path) == os.path.realpath(ib.path) or
                   file_sha256(ia.path) == file_sha256(ib.path) for ib in fb.get(fp, ())):
                out.append(ia.key)
    return out


def refuse_overlap(data: DataSource, validation: DataSource, allow_overlap: bool, what: str, measured_on: str,
                   field: tuple[str, ...]) -> int:
    """The number of images `data` shares with `validation`; an InputError naming both, one shared image and what
    the reported figure would then be measured on, unless `allow_overlap`. One rule for fine-tuning and QAT
    data alike (calibration against validation names the validation first, in quant_parts)."""
    shared = shared_items(data, validation)
    if shared and not allow_overlap:
        raise InputError(f"{what} shares {len(shared)} image(s) with the validation data {validation.name} (e.g. "
                         f"{shared[0]}): {measured_on}. Give disjoint data, or pass allow_overlap=True", field=field)
    return len(shared)


@dataclass(frozen=True)
class DataSpec:
    """Which data a quantization run reads, as named by the user (sources by name or folder), before it is
    resolved at an input size. `val` None: the checkpoint's own held-out set, else a split of `calib`."""

    calib: str | os.PathLike = option("sample", f"calibration data: {source_help()}")
    val: str | os.PathLike | None = option(
        None, "held-out data for INT8 vs FP32 (default: the checkpoint's held-out set, proxy-val for the proxy "
        "checkpoint; else a disjoint split of --calib)")
    val_fraction: float = option(0.5, "without --val: the fraction of --calib kept for validation", type=float)
    val_limit: int | None = option(None, "evaluate a seeded subset of --val", type=int)
    accuracy_control: bool = option(False, "nncf.quantize_with_accuracy_control: tunes on one half of the validation "
                                    "data, reports the drop on the other half", kind="flag")
    allow_overlap: bool = option(False, "accept validation data that shares images with the calibration data "
                                 "(compress.prune: or with --data)", kind="flag")
    seed: int = option(0, "seed of the calibration/validation subsets", type=int)
    exif: str = option(DEFAULT_EXIF, EXIF_HELP, choices=EXIF_MODES)  # for every part

    def __post_init__(self) -> None:
        if not 0 < self.val_fraction < 1:
            raise InputError(f"val_fraction must be in (0, 1); got {self.val_fraction}", field="val_fraction")
        check_count(self.val_limit, "val_limit")
        check_exif(self.exif)


def quant_parts(spec: DataSpec, size: int | Preprocess, default_val: str | None = None) -> JobData:
    """Calibration and validation data that never share an image unless spec.allow_overlap:
    - an explicit `val` (or the checkpoint's own held-out set, `default_val`) is checked for overlap;
    - with neither, the calibration source is split (seeded, class-balanced) into disjoint parts."""
    calib, val, seed, val_fraction = spec.calib, spec.val, spec.seed, spec.val_fraction
    calib_src = resolve_source(calib, size, exif=spec.exif)
    val_spec = val if val is not None else default_val
    if val_spec is None:
        calib_part, val_src = calib_src.split(val_fraction, seed)
        rule = (f"no validation data given: {calib_src.name} split {1 - val_fraction:.0%}/{val_fraction:.0%} "
                f"into disjoint calibration and validation parts (seed {seed}, class-balanced)"
                if calib_src.labelled else
                f"no validation data given: {calib_src.name} split into disjoint parts (seed {seed})")
        calib_src, overlap = calib_part, 0
    else:
        val_src = resolve_source(val_spec, size, exif=spec.exif)
        shared = shared_items(calib_src, val_src)
        overlap = len(shared)
        if shared and not spec.allow_overlap:
            raise InputError(
                f"val {val_spec} shares {len(shared)} image(s) with calib {calib} (e.g. {shared[0]}): INT8 "
                "accuracy would be measured on calibration images. Give disjoint data, no val (to split "
                "calib), or allow_overlap=True", field=("val", "calib", "val", "calib", "allow_overlap"))
        rule = (f"validation {val_spec}" if val is not None else f"{val_spec}: the checkpoint's held-out set") + (
            f" (overlaps calibration in {overlap} images: allow_overlap)" if overlap else
            " (checked disjoint from calibration)")
    val_src = val_src.subset(spec.val_limit, seed)
    tuning = None
    if spec.accuracy_control:
        if not val_src.labelled:
            raise InputError(f"accuracy_control needs labelled validation data; {val_src.name} has none",
                             field="accuracy_control")
        tuning, val_src = val_src.split(0.5, seed + 1)
        rule += "; accuracy control tunes on one half of it and reports on the other"
    return JobData(calib_src, val_src, rule, tuning, overlap)
