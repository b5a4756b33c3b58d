"""Run the bad-input cases as a user would (each a fresh `python -m ...` process) and
tabulate what the tool does: exit status, seconds to the answer, its last line, and what is left on disk beside --out.

    python -m tools.robustness_cases [--only NAME ...] [--json out.json]

The full-disk case mounts a 12 MB tmpfs and needs root (it is listed as skipped otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from compress.render import md_table

QUICK = ["--input-size", "32", "--subset-size", "8", "--val-limit", "16", "--fast-bias-correction",
         "--activation-range", "minmax", "--benchmark-seconds", "0"]
WNIDS = ("n01440764", "n02102040", "n03000684")


def _images(folder: Path, names: list[str | bytes]) -> None:
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    for name in names:
        path = os.path.join(os.fsencode(folder), name if isinstance(name, bytes) else name.encode())
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), np.uint8)).save(os.fsdecode(path), format="JPEG")


def _run(argv: list[str], cwd: Path, signal_after: float | None = None) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", *argv], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, errors="replace")
    if signal_after is not None:
        time.sleep(signal_after)
        p.send_signal(signal.SIGTERM)
    out, err = p.communicate()
    # the answer: the error's last line, or on success the summary's
    lines = [ln for ln in ((out if p.returncode == 0 and out.strip() else err) or "").strip().splitlines()
             if ln.strip()]
    return p.returncode, time.perf_counter() - t0, lines[-1] if lines else ""


def _left(folder: Path) -> str:
    names = sorted(p.name for p in folder.iterdir())
    return ", ".join(names) if names else "nothing"


def case_concurrent(tmp: Path) -> dict:
    """Two compress.quantize runs into one --out: the second stops, naming the first."""
    out = tmp / "o" / "run"
    out.parent.mkdir()
    first = subprocess.Popen([sys.executable, "-m", "compress.quantize", *QUICK, "--out", str(out)], cwd=tmp,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not any(p.name.endswith(".lock") for p in out.parent.iterdir()):
        time.sleep(0.2)
    code, secs, line = _run(["compress.quantize", *QUICK, "--out", str(out)], tmp)
    first.wait()
    return {"exit": code, "seconds": secs, "says": line, "left": _left(out.parent) + f" (first run: exit "
                                                                                      f"{first.returncode})"}


def case_non_utf8_name(tmp: Path) -> dict:
    """A file name that is not valid UTF-8 in a class folder: used, and the run completes."""
    _images(tmp / "calib", [b"\xff\xfe.jpg", *[f"a{i}.jpg".encode() for i in range(7)]])  # unlabelled folders
    _images(tmp / "val", [f"v{i}.jpg" for i in range(8)])
    out = tmp / "o" / "run"
    out.parent.mkdir()
    code, secs, line = _run(["compress.quantize", *QUICK, "--calib", str(tmp / "calib"), "--val", str(tmp / "val"),
                             "--out", str(out)], tmp)
    if code == 0:
        used = json.loads((out / "report.json").read_text(errors="surrogateescape"))["calibration_items"]
        odd = [i.get("key", i) for i in used if "udcff" in json.dumps(i) or "xff" in json.dumps(i)]
        line += f" [calibration used {len(used)} images; not-UTF-8 names among them: {odd or 'none'}]"
    return {"exit": code, "seconds": secs, "says": line, "left": _left(out.parent)}


def case_ignored_scope(tmp: Path) -> dict:
    out = tmp / "o" / "run"
    out.parent.mkdir()
    code, secs, line = _run(["compress.quantize", *QUICK, "--ignored-scope", "type:NoSuchOp", "--out", str(out)],
                            tmp)
    return {"exit": code, "seconds": secs, "says": line, "left": _left(out.parent)}


def case_prune_ignored_scope(tmp: Path) -> dict:
    out = tmp / "o" / "run"
    out.parent.mkdir()
    code, secs, line = _run(["compress.prune", *QUICK, "--quantize", "--ignored-scope", "type:NoSuchOp",
                             "--out", str(out)], tmp)
    return {"exit": code, "seconds": secs, "says": line, "left": _left(out.parent)}


def case_hidden_entries(tmp: Path) -> dict:
    """tools.make_imagenet_subset over a source holding .ipynb_checkpoints/ and .DS_Store."""
    src = tmp / "src"
    for w in WNIDS:
        _images(src / w, [f"{w}_1.JPEG", f"{w}_2.JPEG"])
    (src / ".ipynb_checkpoints").mkdir()
    (src / ".DS_Store").write_bytes(b"\0\1")
    out = tmp / "o" / "subset"
    out.parent.mkdir()
    code, secs, line = _run(["tools.make_imagenet_subset", "--src", str(src), "--per-class", "1", "--out", str(out)],
                            Path(__file__).resolve().parents[1])
    return {"exit": code, "seconds": secs, "says": line, "left": _left(out.parent)}


def case_bom_csv(tmp: Path) -> dict:
    """A LOC_val_solution.csv written with a byte-order mark (what spreadsheet programs write)."""
    flat = tmp / "flat"
    _images(flat, [f"ILSVRC2012_val_0000000{i}.JPEG" for i in range(1, 4)])
    rows = [f"ILSVRC2012_val_0000000{i},{WNIDS[i - 1]} 1 1 2 2" for i in range(1, 4)]
    (tmp / "labels.csv").write_text("ImageId,PredictionString\n" + "\n".join(rows) + "\n", encoding="utf-8-sig")
    out = tmp / "o" / "subset"
    out.parent.mkdir()
    code, secs, line = _run(["tools.make_imagenet_subset", "--src", str(flat), "--labels", str(tmp / "labels.csv"),
                             "--per-class", "1", "--out", str(out)], Path(__file__).resolve().parents[1])
    return {"exit": code, "seconds": secs, "says": line, "left": _left(out.parent)}


def case_full_disk(tmp: Path) -> dict:
    mnt = tmp / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        return {"exit": None, "seconds": 0.0, "says": f"skipped: cannot mount a tmpfs ({r.stderr.strip()})",
                "left": "–"}
    try:
        code, secs, line = _run(["compress.quantize", *QUICK, "--out", str(mnt / "run")], tmp)
        return {"exit": code, "seconds": secs, "says": line, "left": _left(mnt)}
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def case_sigterm(tmp: Path) -> dict:
    out = tmp / "o" / "run"
    out.parent.mkdir()
    code, secs, line = _run(["compress.quantize", *QUICK, "--out", str(out)], tmp, signal_after=12.0)
    return {"exit": code, "seconds": secs, "says": line, "left": _left(out.parent)}


def case_prune_overlap(tmp: Path) -> dict:
    out = tmp / "o" / "run"
    out.parent.mkdir()
    code, secs, line = _run(["compress.prune", *QUICK, "--data", "proxy-val", "--out", str(out)], tmp)
    return {"exit": code, "seconds": secs, "says": line, "left": _left(out.parent)}


def case_checkpoint_folder(tmp: Path) -> dict:
    out = tmp / "o" / "run"
    out.parent.mkdir()
    code, secs, line = _run(["compress.quantize", *QUICK, "--checkpoint", str(tmp), "--out", str(out)], tmp)
    return {"exit": code, "seconds": secs, "says": line, "left": _left(out.parent)}


def case_wordnet_on_16_classes(tmp: Path) -> dict:
    for w in WNIDS:
        _images(tmp / "wn" / w, ["a.JPEG"])
    code, secs, line = _run(["compress.evaluate", "--checkpoint", "proxy", "--data", str(tmp / "wn")], tmp)
    return {"exit": code, "seconds": secs, "says": line, "left": "(no output folder)"}


# ---------------------------------------------------------------- outputs beside inputs, interrupted runs
def case_out_inside_calib(tmp: Path) -> dict:
    """--out inside the --calib folder: refused before any work (it used to poison the folder)."""
    _images(tmp / "calib", [f"{i}.jpg" for i in range(6)])
    code, secs, line = _run(["compress.quantize", *QUICK, "--calib", str(tmp / "calib"), "--val", "proxy-val",
                             "--out", str(tmp / "calib" / "run")], tmp)
    return {"exit": code, "seconds": secs, "says": line, "left": _left(tmp / "calib")}


def case_out_is_checkpoint_folder(tmp: Path) -> dict:
    """--out --force over the folder that holds --checkpoint: refused (the run would delete its input)."""
    import reference_np as rn
    from reference_np.specs import VARIANTS, plan_from_spec

    (tmp / "ck").mkdir()
    rn.save_weights(rn.random_weights(plan_from_spec(VARIANTS["cloformer_xxs"]), 0), tmp / "ck" / "w.safetensors")
    code, secs, line = _run(["compress.quantize", *QUICK, "--model", "cloformer_xxs", "--checkpoint",
                             str(tmp / "ck" / "w.safetensors"), "--out", str(tmp / "ck"), "--force"], tmp)
    return {"exit": code, "seconds": secs, "says": line, "left": _left(tmp / "ck")}


def case_subset_inside_src(tmp: Path) -> dict:
    for w in WNIDS:
        _images(tmp / "val" / w, ["a.JPEG"])
    code, secs, line = _run(["tools.make_imagenet_subset", "--src", str(tmp / "val"), "--per-class", "1", "--out",
                             str(tmp / "val" / "sub")], Path(__file__).resolve().parents[1])
    return {"exit": code, "seconds": secs, "says": line, "left": _left(tmp / "val")}


def case_old_output_in_data(tmp: Path) -> dict:
    """An earlier run's output folder left inside a flat data folder: skipped with a warning naming it."""
    _images(tmp / "flat", [f"{i}.jpg" for i in range(6)])
    code, _, _ = _run(["compress.quantize", *QUICK, "--isa-matrix", "none", "--out", str(tmp / "flat" / "old")], tmp)
    assert code == 0
    code, secs, line = _run(["compress.evaluate", "--checkpoint", "proxy", "--data", str(tmp / "flat"),
                             "--input-size", "32"], tmp)
    return {"exit": code, "seconds": secs, "says": line, "left": _left(tmp / "flat")}


def case_exif(tmp: Path) -> dict:
    """A photo tagged orientation 6, evaluated with --exif apply: the report (here the JSON) records it."""
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp / "ex").mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), np.uint8)).save(
        tmp / "ex" / "p.jpg", exif=exif.tobytes())
    code, secs, line = _run(["compress.evaluate", "--checkpoint", "proxy", "--data", str(tmp / "ex"), "--exif",
                             "apply", "--input-size", "32", "--json", str(tmp / "r.json")], tmp)
    recorded = json.loads((tmp / "r.json").read_text())["exif"]
    return {"exit": code, "seconds": secs, "says": f"{line} / json exif: {recorded}", "left": "(no output folder)"}


def case_loop_link(tmp: Path) -> dict:
    _images(tmp / "d" / "a", ["x.jpg"])
    (tmp / "d" / "loop").symlink_to(tmp / "d" / "loop2")
    (tmp / "d" / "loop2").symlink_to(tmp / "d" / "loop")
    (tmp / "d" / "self").symlink_to(tmp / "d")
    t0 = time.perf_counter()  # the warning is the answer here, not the last line: one run, its stderr read whole
    p = subprocess.run([sys.executable, "-m", "compress.evaluate", "--checkpoint", "proxy", "--data", str(tmp / "d")],
                       capture_output=True, text=True, cwd=tmp)
    warn = next((ln for ln in p.stderr.splitlines() if "symbolic link" in ln), "")
    return {"exit": p.returncode, "seconds": time.perf_counter() - t0, "says": warn, "left": "(no output folder)"}


def case_dangling_data(tmp: Path) -> dict:
    (tmp / "gone").symlink_to(tmp / "nowhere")
    code, secs, line = _run(["compress.evaluate", "--checkpoint", "proxy", "--data", str(tmp / "gone")], tmp)
    return {"exit": code, "seconds": secs, "says": line, "left": "(no output folder)"}


def case_log_file(tmp: Path) -> dict:
    """The main job at 32 px with stdout/stderr to files and HOME not writable: no carriage returns, no
    third-party lines, the summary last; 'left' counts stderr's lines and the carriage returns in it."""
    env = {**os.environ, "HOME": "/proc/no-home"}
    for k in ("MPLCONFIGDIR", "ORT_DISABLE_TELEMETRY"):
        env.pop(k, None)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "compress.quantize", "--input-size", "32", "--out", str(tmp / "run")],
                       capture_output=True, text=True, cwd=tmp, env=env)
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    noise = [ln for ln in p.stderr.splitlines() if "telemetry" in ln or "matplotlib" in ln.lower()
             or "fontManager" in ln or "fell back" in ln]
    return {"exit": p.returncode, "seconds": time.perf_counter() - t0, "says": last,
            "left": f"stderr {len(p.stderr.splitlines())} lines, {p.stderr.count(chr(13))} CR, "
                    f"{len(noise)} third-party/expected lines"}


CASES: dict[str, tuple[str, Callable[[Path], dict]]] = {
    "concurrent": ("1. second run into the same --out while the first works", case_concurrent),
    "non_utf8": ("2. a file name that is not UTF-8 (\\xff\\xfe.jpg)", case_non_utf8_name),
    "scope": ("3. --ignored-scope matching no node (quantize)", case_ignored_scope),
    "scope_prune": ("3. the same in prune --quantize (before fine-tuning)", case_prune_ignored_scope),
    "hidden": ("4. make_imagenet_subset over .ipynb_checkpoints/ and .DS_Store", case_hidden_entries),
    "bom": ("5. labels CSV with a byte-order mark", case_bom_csv),
    "disk": ("6. --out on a 12 MB filesystem", case_full_disk),
    "sigterm": ("7. SIGTERM 12 s into a run", case_sigterm),
    "overlap": ("12. prune fine-tuning on the validation set", case_prune_overlap),
    "ckpt_folder": ("9. --checkpoint naming a folder", case_checkpoint_folder),
    "wordnet": ("9. WordNet folders on the 16-class model", case_wordnet_on_16_classes),
    "out_in_calib": ("R4-1. --out inside the --calib folder", case_out_inside_calib),
    "out_over_ckpt": ("R4-1. --out --force over the folder holding --checkpoint", case_out_is_checkpoint_folder),
    "subset_in_src": ("R4-1. make_imagenet_subset --out inside --src", case_subset_inside_src),
    "old_output": ("R4-1. an earlier output folder inside a data folder", case_old_output_in_data),
    "exif": ("R4-2. EXIF orientation 6 with --exif apply", case_exif),
    "loop_link": ("R4-5. loop links and a self link in a class folder", case_loop_link),
    "dangling": ("R4-5. a dangling link as --data", case_dangling_data),
    "log_file": ("R4-4. the main job (32 px) into log files, HOME not writable", case_log_file),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", choices=sorted(CASES), default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    rows, results = [], {}
    for key, (title, case) in CASES.items():
        if args.only and key not in args.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            r = case(Path(tmp))
        results[key] = {"case": title, **r}
        print(f"{title}: exit {r['exit']}, {r['seconds']:.1f} s, left: {r['left']}\n    {r['says']}", flush=True)
        rows.append([title, r["exit"], f"{r['seconds']:.1f}", r["says"][:160].replace("|", "/"), r["left"]])
    print("\n" + md_table(["case", "exit", "seconds", "last line printed", "left beside --out"], rows))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
