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
from tqdm import tqdm

from compress.atomic import staging_dir
from compress.data import IMAGE_EXTS, data_root, file_sha256, imagenet_synsets


def read_labels(path: Path) -> dict[str, str]:
    """file stem -> wnid, from a Kaggle CSV (ImageId,PredictionString) or '<file> <wnid>' lines."""
    out: dict[str, str] = {}
    text = path.read_text()
    if text.startswith("ImageId"):
        for row in csv.DictReader(text.splitlines()):
            out[row["ImageId"]] = row["PredictionString"].split()[0]
    else:
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                parts = line.split()
                if len(parts) != 2:
                    raise ValueError(f"{path}:{n}: expected '<file name> <wnid>', got {line!r}")
                out[Path(parts[0]).stem] = parts[1]
    return out


def class_files(src: Path, labels: Path | None) -> dict[str, list[Path]]:
    synsets = set(imagenet_synsets())
    by_class: dict[str, list[Path]] = {}
    if labels is None:
        subdirs = [d for d in sorted(src.iterdir()) if d.is_dir()]
        if not subdirs:
            raise ValueError(f"{src} has no class subfolders; for a flat val folder pass --labels")
        bad = [d.name for d in subdirs if d.name not in synsets]
        if bad:
            raise ValueError(f"{src}: subfolders are not ILSVRC2012 WordNet ids: {bad[:5]}")
        for d in subdirs:
            by_class[d.name] = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    else:
        lab = read_labels(labels)
        for p in sorted(src.iterdir()):
            if p.suffix.lower() in IMAGE_EXTS:
                if p.stem not in lab:
                    raise ValueError(f"{labels} has no label for {p.name}")
                if lab[p.stem] not in synsets:
                    raise ValueError(f"{labels}: '{lab[p.stem]}' (for {p.name}) is not an ILSVRC2012 WordNet id")
                by_class.setdefault(lab[p.stem], []).append(p)
    if not any(by_class.values()):
        raise ValueError(f"{src} holds no images")
    return by_class


def build(src: Path, per_class: int, out: Path, seed: int = 0, mode: str = "copy",
          labels: Path | None = None, force: bool = False) -> dict[str, object]:
    if per_class < 1:
        raise ValueError("--per-class must be >= 1")
    if not src.is_dir():
        raise FileNotFoundError(f"source folder not found: {src}")
    by_class = class_files(src, labels)
    index = {s: i for i, s in enumerate(imagenet_synsets())}
    rng = np.random.default_rng(seed)
    with staging_dir(out, force) as tmp:
        entries = []
        for wnid in tqdm(sorted(by_class), desc="imagenet_subset", unit="class"):
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, required=True, help="ILSVRC2012 validation folder")
    ap.add_argument("--per-class", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--labels", type=Path, help="ground truth for a flat --src folder")
    ap.add_argument("--mode", choices=["copy", "symlink", "hardlink"], default="copy")
    ap.add_argument("--out", type=Path, default=None, help="default: $CLOFORMER_DATA/imagenet_subset")
    ap.add_argument("--force", action="store_true", help="replace an existing subset")
    args = ap.parse_args(argv)
    out = args.out or data_root() / "imagenet_subset"
    try:
        m = build(args.src, args.per_class, out, args.seed, args.mode, args.labels, args.force)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}: {m['n']} images from {m['classes']} classes (seed {args.seed}), manifest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
