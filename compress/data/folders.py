"""Image folders: ImageNet layout (WordNet-id class folders), named class folders, or a flat folder."""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

from ..errors import InputError
from .files import imagenet_synsets, open_image
from .source import DataSource, Item

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jfif"}


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
