"""Data sources: image folders (ImageNet layout, named classes, flat), unreadable files, ImageNet subsets, the
proxy task's splits, labels checked against the model, seeded disjoint parts, lazy hashing, links that lead
nowhere."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compress.data import (
    folder_source,
    imagenet_synsets,
    proxy,
)
from compress.data.sources import resolve_source
from compress.errors import InputError
from tests.helpers import write_images
from tools import make_imagenet_subset


def test_folder_imagenet_layout_maps_wnids(tmp_path) -> None:
    syn = imagenet_synsets()
    assert len(syn) == 1000 and list(syn) == sorted(syn) and syn[0] == "n01440764" and syn[-1] == "n15075141"
    for wnid in ("n01443537", "n15075141"):
        write_images(tmp_path / wnid, ["a.JPEG", "b.png"])
    src = folder_source(tmp_path, 32)
    assert [it.label for it in src.items] == [1, 1, 999, 999]
    assert src.labelled and len(list(src)) == 4


def test_folder_custom_classes_sorted(tmp_path) -> None:
    for c in ("zebra", "ant"):
        write_images(tmp_path / c, ["x.jpg"])
    src = folder_source(tmp_path, 32)
    assert src.classes == ["ant", "zebra"] and [it.label for it in src.items] == [0, 1]


def test_flat_folder_is_unlabelled(tmp_path) -> None:
    write_images(tmp_path, ["1.png", "2.jpg", "3.bmp"])
    (tmp_path / "notes.txt").write_text("not an image")
    src = folder_source(tmp_path, 32)
    assert len(src) == 3 and not src.labelled
    xb, yb = next(src.batches(8))
    assert xb.shape == (3, 3, 32, 32) and yb is None


def test_bad_files_skipped_with_one_counting_warning(tmp_path) -> None:
    write_images(tmp_path / "cls", ["good1.png", "good2.jpg"])
    (tmp_path / "cls" / "fake.jpg").write_bytes(b"this is not a jpeg")
    good = (tmp_path / "cls" / "good2.jpg").read_bytes()
    (tmp_path / "cls" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "cls" / "empty.png").write_bytes(b"")
    src = folder_source(tmp_path, 32)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = list(src)
    assert len(out) == 2
    msgs = [str(w.message) for w in rec]
    assert len(msgs) == 1 and "skipped 3 unreadable image(s); used 2" in msgs[0]


def test_missing_and_empty_sources(tmp_path) -> None:
    with pytest.raises(InputError, match="not found"):
        resolve_source(tmp_path / "nope", 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no images"):
        resolve_source(tmp_path / "empty", 32)
    (tmp_path / "afile.png").write_bytes(b"x")
    with pytest.raises(InputError, match="not a folder"):
        resolve_source(tmp_path / "afile.png", 32)


def test_imagenet_subset_end_to_end(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CLOFORMER_DATA", str(tmp_path / "data"))
    with pytest.raises(InputError, match="make_imagenet_subset --src"):
        resolve_source("imagenet_subset", 32)  # absent: a clear error, never other data
    val = tmp_path / "val"
    wnids = ["n01440764", "n02102040", "n03000684"]
    for w in wnids:
        write_images(val / w, [f"ILSVRC2012_val_{w}_{i}.JPEG" for i in range(4)])
    assert make_imagenet_subset.main(["--src", str(val), "--per-class", "2", "--seed", "3"]) == 0
    root = tmp_path / "data" / "imagenet_subset"
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["n"] == 6 and manifest["seed"] == 3 and not list(root.parent.glob(".*partial*"))
    src = resolve_source("imagenet_subset", 32)
    # tench, English springer, chain saw
    assert len(src) == 6 and [it.label for it in src.items] == [0, 0, 217, 217, 491, 491]
    assert {e["sha256"] for e in manifest["files"]} == {it.sha256 for it in src.items}  # hashed when asked
    assert src.manifest()["n"] == 6
    # reproducible: the same seed picks the same files; an existing subset is refused without --force
    assert make_imagenet_subset.main(["--src", str(val), "--per-class", "2", "--seed", "3"]) == 2
    assert make_imagenet_subset.main(["--src", str(val), "--per-class", "2", "--seed", "3", "--force"]) == 0
    again = json.loads((root / "manifest.json").read_text())
    assert [e["file"] for e in again["files"]] == [e["file"] for e in manifest["files"]]


def test_imagenet_subset_from_flat_folder_with_labels(tmp_path) -> None:
    val = tmp_path / "flat"
    write_images(val, ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG"])
    labels = tmp_path / "LOC_val_solution.csv"
    labels.write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,n01751748 1 2 3 4\n"
                      "ILSVRC2012_val_00000002,n09193705 5 6 7 8\n")
    out = tmp_path / "subset"
    assert make_imagenet_subset.main(["--src", str(val), "--labels", str(labels), "--per-class", "1",
                                      "--out", str(out), "--mode", "symlink"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "n01751748", "n09193705"]
    bad = tmp_path / "bad.txt"
    bad.write_text("ILSVRC2012_val_00000001 n99999999\nILSVRC2012_val_00000002 n09193705\n")
    assert make_imagenet_subset.main(["--src", str(val), "--labels", str(bad), "--per-class", "1",
                                      "--out", str(tmp_path / "s2")]) == 2
    assert not (tmp_path / "s2").exists()


def test_imagenet_subset_hidden_entries_and_bom_csv(tmp_path) -> None:
    """Hidden entries are ignored by every folder reader (make_imagenet_subset as
    compress.evaluate), and a UTF-8 CSV with a byte-order mark (what spreadsheets write) is read; a real missing
    column still gets its message."""
    val = tmp_path / "val"
    write_images(val / "n01440764", ["a.JPEG", "b.JPEG"])
    (val / ".ipynb_checkpoints").mkdir()
    (val / ".DS_Store").write_bytes(b"\0\1")
    write_images(val / "n01440764", [".hidden.JPEG"])
    out = tmp_path / "subset"
    assert make_imagenet_subset.main(["--src", str(val), "--per-class", "5", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(Path(e["file"]).name for e in manifest["files"]) == ["a.JPEG", "b.JPEG"]
    assert len(folder_source(val, 32)) == 2  # the same rule as compress.evaluate's reader
    flat = tmp_path / "flat"
    write_images(flat, ["ILSVRC2012_val_00000001.JPEG", ".ILSVRC2012_val_00000009.JPEG"])
    bom = tmp_path / "bom.csv"
    bom.write_bytes("ImageId,PredictionString\nILSVRC2012_val_00000001,n01751748 1 2 3 4\n".encode("utf-8-sig"))
    assert make_imagenet_subset.main(["--src", str(flat), "--labels", str(bom), "--per-class", "1",
                                      "--out", str(tmp_path / "s")]) == 0
    missing = tmp_path / "missing.csv"
    missing.write_bytes("ImageId,Label\nILSVRC2012_val_00000001,n01751748\n".encode("utf-8-sig"))
    with pytest.raises(InputError, match=r"lacks column\(s\) PredictionString"):
        make_imagenet_subset.read_labels(missing)


def test_proxy_splits_share_no_pixels() -> None:
    val, sample = resolve_source("proxy-val", 64), resolve_source("sample", 64)
    assert len(val) == 800 and len(sample) == 320 and val.labelled and sample.labelled
    for src, split in ((val, "val"), (sample, "train")):
        for it in src.items:
            name, box = it.key.split("@")
            img = proxy.photos()[proxy.PHOTOS.index(name)]
            left, t, r, b = proxy.region(img, split)
            x0, y0, x1, y1 = eval(box)
            assert left <= x0 < x1 <= r and t <= y0 < y1 <= b, it.key
    for img in proxy.photos():
        assert proxy.region(img, "train")[2] == proxy.region(img, "val")[0]  # adjacent, disjoint
    x, y = next(val.batches(16))
    assert x.shape == (16, 3, 64, 64) and y.tolist() == [0] * 16
    assert len(resolve_source("sample", 64, limit=100)) == 100


# ---------------------------------------------------------------- labels, layouts, splits
def test_mixed_wordnet_and_other_class_folders_refused(tmp_path) -> None:
    """n15075141 would otherwise become class 2 in sorted order, not 999, and be scored against that."""
    for c in ("n01440764", "n15075141", "cats"):
        write_images(tmp_path / c, ["x.jpg"])
    with pytest.raises(InputError, match=r"mixes WordNet-id class folders .* with other names \(cats"):
        folder_source(tmp_path, 32)


def test_class_folders_beside_loose_images_refused(tmp_path) -> None:
    write_images(tmp_path / "n01440764", ["x.jpg"])
    write_images(tmp_path, ["loose.png"])
    with pytest.raises(InputError, match="both class subfolders and 1 loose image"):
        folder_source(tmp_path, 32)


def test_labels_checked_against_the_model(tmp_path) -> None:
    """A 16-class model on WordNet folders (labels 0..999) or on a 3-class folder cannot be scored."""
    for w in ("n01440764", "n15075141"):
        write_images(tmp_path / "imnet" / w, ["a.jpg"])
    src = folder_source(tmp_path / "imnet", 32)
    src.check_labels(1000)
    with pytest.raises(InputError, match=r"WordNet-id folders are scored against the 1000 ImageNet classes; "
                                         r"this model has 16"):
        src.check_labels(16)
    for c in ("a", "b", "c"):
        write_images(tmp_path / "named" / c, ["x.jpg"])
    with pytest.raises(InputError, match="has 3 classes"):
        folder_source(tmp_path / "named", 32).check_labels(16)
    folder_source(tmp_path / "named", 32).check_labels(3)
    with pytest.raises(InputError, match="has 16 classes"):
        resolve_source("proxy-val", 32).check_labels(1000)  # proxy data with an ImageNet checkpoint


def test_unreadable_images_do_not_count_toward_a_subset(tmp_path) -> None:
    """8 requested from 6 good and 4 broken files: all 6 good ones are used, the report lists only them."""
    write_images(tmp_path, [f"good{i}.png" for i in range(6)])
    for i in range(4):
        (tmp_path / f"bad{i}.png").write_bytes(b"broken")
    src = resolve_source(tmp_path, 32).subset(5, seed=1)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        decoding = src.decode(workers=1)
        out = list(decoding)
    assert len(out) == 5 and len(src) == 5 and all("good" in it.key for it in decoding.used)
    assert len(rec) <= 1 and decoding.manifest()["n"] == 5
    assert {it["key"] for it in decoding.manifest()["items"]} == {it.key for it in decoding.used}
    all_src = resolve_source(tmp_path, 32)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        decoding = all_src.decode(workers=2)
        assert len(list(decoding)) == 6
    assert len(rec) == 1 and "skipped 4 unreadable image(s); used 6" in str(rec[0].message)
    assert decoding.manifest()["skipped"] == 4 and decoding.manifest()["n"] == 6
    # the plan is immutable: decoding changed neither its length, its digest nor its manifest
    assert len(all_src) == 10 and all_src.manifest()["skipped"] == 0 and all_src.manifest()["n"] == 10
    assert decoding.digest() != all_src.digest()
    with pytest.raises(RuntimeError, match="one pass"):
        list(decoding)


def test_split_is_disjoint_seeded_and_class_balanced() -> None:
    src = resolve_source("sample", 32)  # 16 classes x 20
    calib, val = src.split(0.25, seed=3)
    keys_c, keys_v = {it.key for it in calib.items}, {it.key for it in val.items}
    assert not keys_c & keys_v and len(keys_c) + len(keys_v) == len(src)
    per_class = np.bincount([it.label for it in val.items], minlength=16)
    assert (per_class == 5).all()  # round(0.25 * 20) of every class
    again = src.split(0.25, seed=3)[1]
    assert [it.key for it in again.items] == [it.key for it in val.items] and val.digest() == again.digest()
    assert src.split(0.25, seed=4)[1].digest() != val.digest()
    # a limited source (--val-limit, accuracy control's tuning split) splits its planned images and shares its
    # spare candidates between the parts, which stay disjoint
    limited = src.subset(40, seed=1)
    a, b = limited.split(0.5, seed=2)
    assert len(a) + len(b) == 40 and not {it.key for it in a.items} & {it.key for it in b.items}
    assert len(a.items) + len(b.items) == len(src.items)


def test_quant_parts_never_share_images(tmp_path) -> None:
    from compress.data.sources import DataSpec, quant_parts, shared_items

    for w in ("n01440764", "n02102040"):
        write_images(tmp_path / "a" / w, [f"{w}_{i}.JPEG" for i in range(6)])
    parts = quant_parts(DataSpec(tmp_path / "a"), 32)  # no val: split
    assert not shared_items(parts.calibration, parts.validation) and "split" in parts.rule
    assert len(parts.calibration.items) == len(parts.validation.items) == 6
    # a copy of some calibration files elsewhere is the same data: refused unless allowed
    (tmp_path / "b" / "n01440764").mkdir(parents=True)
    for f in sorted((tmp_path / "a" / "n01440764").iterdir())[:2]:
        (tmp_path / "b" / "n01440764" / f.name).write_bytes(f.read_bytes())
    with pytest.raises(InputError, match="shares 2 image"):
        quant_parts(DataSpec(tmp_path / "a", tmp_path / "b"), 32)
    ok = quant_parts(DataSpec(tmp_path / "a", tmp_path / "b", allow_overlap=True), 32)
    assert ok.overlap == 2 and "allow_overlap" in ok.rule
    ac = quant_parts(DataSpec("sample", "proxy-val", accuracy_control=True), 32)
    assert ac.tuning is not None and not {i.key for i in ac.tuning.items} & {i.key for i in ac.validation.items}


def test_folder_of_50k_links_hashes_lazily(tmp_path) -> None:
    """resolve_source reads names only (no file is opened or hashed for 50,000 links in 1000 class folders),
    and a 300-image subset hashes its 300 files. Its time (target <= 2 s) is measured by tools.bench_data."""
    from compress.data import source

    write_images(tmp_path, ["img.png"])
    root = tmp_path / "val"
    for w in imagenet_synsets():
        (root / w).mkdir(parents=True)
        for i in range(50):
            (root / w / f"{i}.JPEG").symlink_to(tmp_path / "img.png")
    calls = []
    orig = source.file_sha256  # what an item's sha256 calls
    source.file_sha256 = lambda p: calls.append(p) or orig(p)
    try:
        src = resolve_source(root, 32)
        assert len(src) == 50_000 and not calls
        assert src.labelled and src.items[-1].label == 999
        src.subset(300).manifest()
        assert len(calls) == 300
    finally:
        source.file_sha256 = orig


def test_shared_images_found_among_equal_names(tmp_path) -> None:
    """Files named alike in different class folders are told apart by content: only the true copy is shared."""
    from compress.data.sources import shared_items

    for k, w in enumerate(("n01440764", "n02102040")):  # the same name and byte size, other pixels
        (tmp_path / "a" / w).mkdir(parents=True)
        Image.fromarray(np.full((40, 48, 3), 10 * k, np.uint8)).save(tmp_path / "a" / w / "x.bmp")  # uncompressed
    assert (tmp_path / "a" / "n01440764" / "x.bmp").stat().st_size == (tmp_path / "a" / "n02102040" / "x.bmp").stat(
    ).st_size
    (tmp_path / "b" / "n02102040").mkdir(parents=True)
    (tmp_path / "b" / "n02102040" / "x.bmp").write_bytes((tmp_path / "a" / "n02102040" / "x.bmp").read_bytes())
    a, b = resolve_source(tmp_path / "a", 32), resolve_source(tmp_path / "b", 32)
    assert shared_items(a, b) == [str(tmp_path / "a" / "n02102040" / "x.bmp")]


# ---------------------------------------------------------------- links that lead nowhere
def test_links_that_lead_nowhere_are_named(tmp_path) -> None:
    """A loop link, a link to the folder's own ancestor and a dangling link inside a class-layout folder are
    skipped with one warning naming each (they used to be a traceback, or counted as a class); a dangling link
    given as the folder is called that, not 'not found'."""
    root = tmp_path / "data"
    write_images(root / "cat", ["a.png", "b.png"])
    write_images(root / "dog", ["c.png", "d.png"])
    (root / "loop_a").symlink_to(root / "loop_b")
    (root / "loop_b").symlink_to(root / "loop_a")
    (root / "self").symlink_to(root)
    (root / "cat" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    with pytest.warns(UserWarning) as seen:
        src = resolve_source(root, 32)
    text = " ".join(str(w.message) for w in seen)
    for name, why in [("loop_a", "link loop"), ("loop_b", "link loop"), ("self", "link to its own ancestor"),
                      ("gone.png", "dangling link")]:
        assert f"{name} ({why}" in text, (name, text)
    assert src.classes == ["cat", "dog"] and len(src) == 4
    (tmp_path / "dangling").symlink_to(tmp_path / "no_such_folder")
    with pytest.raises(InputError, match=r"dangling symbolic link \(to .*no_such_folder\)"):
        resolve_source(tmp_path / "dangling", 32)
