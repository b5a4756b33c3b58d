"""Build the `imagenet_subset` data source from an ILSVRC2012 validation folder, reproducibly.

    python -m tools.make_imagenet_subset --src /data/ILSVRC2012/val --per-class 1 [--seed 0] [--mode symlink]

--src is either in ImageNet layout (one WordNet-id subfolder per class) or flat, with --labels naming a
ground-truth file (Kaggle LOC_val_solution.csv, or lines "<file name> <wnid>"). N images per class are
drawn with a seeded generator from each class's sorted file list, copied (or linked) to
$CLOFORMER_DATA/imagenet_subset/<wnid>/ and listed in manifest.json with their sha256. The folder is
built under a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from compress.atomic import check_apart, staging_dir
from compress.cli import run_main
from compress.data import data_root, file_sha256, imagenet_synsets, scan_folder
from compress.errors import InputError
from compress.progress import Progress


def read_labels(path: Path) -> dict[str, str]:
    """file stem -> wnid, from a Kaggle CSV (ImageId,PredictionString) or '<file> <wnid>' lines. A malformed
    file is an InputError naming the file, the line and what is wrong."""
    if not path.is_file():
        raise InputError(f"--labels {path}: file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheet programs write a byte-order mark
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"--labels {path}: cannot be read as text ({e})") from None
    out: dict[str, str] = {}
    first = text.split("\n", 1)[0]
    if "," in first:  # a CSV with a header
        reader = csv.DictReader(text.splitlines())
        missing = {"ImageId", "PredictionString"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"--labels {path}: CSV header {reader.fieldnames} lacks column(s) "
                             f"{', '.join(sorted(missing))} (expected Kaggle's ImageId,PredictionString)")
        for n, row in enumerate(reader, 2):
            pred = (row.get("PredictionString") or "").split()
            if not row.get("ImageId") or not pred:
                raise InputError(f"--labels {path}:{n}: empty ImageId or PredictionString in {row}")
            out[row["ImageId"]] = pred[0]
    else:
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                parts = line.split()
                if len(parts) != 2:
                    raise InputError(f"--labels {path}:{n}: expected '<file name> <wnid>', got {line!r}")
                out[Path(parts[0]).stem] = parts[1]
    if not out:
        raise InputError(f"--labels {path} holds no labels")
    return out


def class_files(src: Path, labels: Path | None) -> dict[str, list[Path]]:
    synsets = set(imagenet_synsets())
    by_class: dict[str, list[Path]] = {}
    if labels is None:
        subdirs = scan_folder(src)[1]
        if not subdirs:
            raise InputError(f"{src} has no class subfolders; for a flat val folder pass --labels")
        bad = [d.name for d in subdirs if d.name not in synsets]
        if bad:
            raise InputError(f"{src}: subfolders are not ILSVRC2012 WordNet ids: {bad[:5]}")
        for d in subdirs:
            by_class[d.name] = scan_folder(d)[0]
    else:
        lab = read_labels(labels)
        for p in scan_folder(src)[0]:
            if p.stem not in lab:
                raise InputError(f"{labels} has no label for {p.name}")
            if lab[p.stem] not in synsets:
                raise InputError(f"{labels}: '{lab[p.stem]}' (for {p.name}) is not an ILSVRC2012 WordNet id")
            by_class.setdefault(lab[p.stem], []).append(p)
    if not any(by_class.values()):
        raise InputError(f"{src} holds no images")
    return by_class


def build(src: Path, per_class: int, out: Path, seed: int = 0, mode: str = "copy",
          labels: Path | None = None, force: bool = False) -> dict[str, object]:
    if per_class < 1:
        raise InputError("--per-class must be >= 1")
    if not src.is_dir():
        raise InputError(f"source folder not found: {src}")
    check_apart(out, {"src": src, "labels": labels})
    by_class = class_files(src, labels)
    index = {s: i for i, s in enumerate(imagenet_synsets())}
    rng = np.random.default_rng(seed)
    with staging_dir(out, force) as tmp:
        entries = []
        for wnid in Progress(sorted(by_class), desc="imagenet_subset", unit="class"):
            files = by_class[wnid]
            pick = sorted(rng.choice(len(files), min(per_class, len(files)), replace=False)) if files else []
            (tmp / wnid).mkdir()
            for i in pick:
                f = files[i]
                dst = tmp / wnid / f.name
                if mode == "copy":
                    shutil.copy2(f, dst)
                elif mode == "hardlink":
                    os.link(f, dst)
                else:
                    dst.symlink_to(f.resolve())
                entries.append({"file": f"{wnid}/{f.name}", "wnid": wnid, "label": index[wnid],
                                "sha256": file_sha256(f), "source": str(f)})
        manifest = {"src": str(src), "per_class": per_class, "seed": seed, "mode": mode,
                    "classes": len(by_class), "n": len(entries), "files": entries}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, required=True, help="ILSVRC2012 validation folder")
    ap.add_argument("--per-class", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--labels", type=Path, help="ground truth for a flat --src folder")
    ap.add_argument("--mode", choices=["copy", "symlink", "hardlink"], default="copy")
    ap.add_argument("--out", type=Path, default=None, help="default: $CLOFORMER_DATA/imagenet_subset")
    ap.add_argument("--force", action="store_true", help="replace an existing subset")
    ap.add_argument("--verbose", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = args.out or data_root() / "imagenet_subset"

    def go() -> int:
        m = build(args.src, args.per_class, out, args.seed, args.mode, args.labels, args.force)
        print(f"wrote {out}: {m['n']} images from {m['classes']} classes (seed {args.seed}), manifest.json")
        return 0
    return run_main("tools.make_imagenet_subset", go, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
