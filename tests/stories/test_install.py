"""A non-editable install: the wheel's contents, and an install from it used from outside the checkout."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

import reference_np as rn
from reference_np.specs import VARIANTS, plan_from_spec
from tests.helpers import ROOT, write_images


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True, cwd=out)
    return next(out.glob("cloformer_toolkit-*.whl"))


@pytest.mark.slow
def test_wheel_contents(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "compress/resources/imagenet_synsets.txt" in names  # WordNet-id folders need it
    assert {"cloformer/weights/cloformer_xxs_proxy.safetensors", "cloformer/weights/cloformer_xxs_proxy.json"} <= set(
        names)
    assert {"reference_np/model.py", "compress/quantize/__main__.py", "compress/prune/structured.py"} <= set(names)
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"cloformer", "compress", "reference_np"}  # no generic `tools` or `tests` package
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    for script in ("cloformer-quantize = compress.quantize.cli:main", "cloformer-prune = compress.prune.cli:main",
                   "cloformer-evaluate = compress.evaluate.cli:main"):
        assert script in text


@pytest.mark.slow
def test_install_from_wheel_runs_outside_the_checkout(wheel: Path, tmp_path) -> None:
    """The wheel in a fresh venv (its dependencies seen through a .pth to this environment's site-packages,
    so nothing is downloaded), run from a folder that is not the checkout."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True)
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=900)

    r = run(str(py), "-c", "import compress, cloformer; print(compress.__file__)")
    assert r.returncode == 0 and str(env_dir) in r.stdout, r.stderr  # the installed copy, not the checkout
    assert run(str(py), "-c", "import tools").returncode != 0
    assert run(str(env_dir / "bin" / "cloformer-quantize"), "--help").returncode == 0
    # every stage that reads package files or starts a child process (the ISA matrix) runs; the speed section and
    # NNCF's slower defaults add nothing an install could break
    r = run(str(py), "-m", "compress.quantize", "--input-size", "32", "--subset-size", "8", "--val-limit", "16",
            "--benchmark-seconds", "0", "--fast-bias-correction", "--activation-range", "minmax", "--out", "q")
    assert r.returncode == 0 and (work / "q" / "model_int8.xml").is_file(), r.stderr[-2000:]
    # an ImageNet-layout folder (WordNet ids) with a 1000-class checkpoint
    for w in ("n01440764", "n15075141"):
        write_images(work / "val" / w, ["a.JPEG", "b.JPEG"], size=(64, 80))
    rn.save_weights(rn.random_weights(plan_from_spec(VARIANTS["cloformer_xxs"]), 0), work / "r.safetensors")
    r = run(str(env_dir / "bin" / "cloformer-evaluate"), "--model", "r.safetensors", "--data", "val",
            "--input-size", "32")
    assert r.returncode == 0 and "on val (4 images)" in r.stdout, r.stdout + r.stderr
